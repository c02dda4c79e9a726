//! Queries kept parsed by their text: a dashboard sends the same text with every refresh
//! (`SELECT last(v) FROM cpu WHERE host = 'a'`, the `SHOW TAG VALUES` of a template
//! variable), and parsing it was a third of such a query's own work. Parsing is a pure
//! function of the text (`now()` is read when a statement runs), so a kept parse answers
//! as a new one would.

use super::kept::Kept;
use super::parser::{parse_query_with_params, ParamValue, ParseError, Statement};
use std::collections::HashMap;
use std::sync::Arc;

/// How many texts are kept; past it the table starts over.
const QUERIES_KEPT: usize = 256;
/// Longer texts are parsed for their request alone (a kept parse takes a few times its
/// text's size).
const MAX_KEPT_TEXT_BYTES: usize = 16 << 10;

/// The statements of `text`, with `params` bound. Texts with bound parameters, and those
/// that fail to parse, are parsed each time.
pub(crate) fn parsed(
    text: &str,
    params: &HashMap<String, ParamValue>,
) -> Result<Arc<Vec<Statement>>, ParseError> {
    if !params.is_empty() || text.len() > MAX_KEPT_TEXT_BYTES {
        return parse_query_with_params(text, params).map(Arc::new);
    }
    static KEPT: Kept<Arc<Vec<Statement>>> = Kept::new(QUERIES_KEPT);
    KEPT.get_or_make(text, || parse_query_with_params(text, params).map(Arc::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_parse_is_the_parse_of_its_text() {
        let none = HashMap::new();
        let text = "SELECT last(v) FROM cpu WHERE host = 'a'; SHOW DATABASES";
        let first = parsed(text, &none).unwrap();
        let again = parsed(text, &none).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(*again, parse_query_with_params(text, &none).unwrap());
        let refused = parsed("SELECT FROM", &none).unwrap_err();
        assert_eq!(
            refused,
            parse_query_with_params("SELECT FROM", &none).unwrap_err()
        );
    }

    #[test]
    fn bound_parameters_are_parsed_each_time() {
        let text = "SELECT v FROM cpu WHERE host = $host";
        let bound = |host: &str| {
            let params = HashMap::from([("host".to_owned(), ParamValue::String(host.into()))]);
            parsed(text, &params).unwrap()
        };
        assert_ne!(bound("a"), bound("b"));
        assert!(parsed(text, &HashMap::new()).is_err());
    }
}
