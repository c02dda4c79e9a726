//! EXPLAIN ANALYZE's answer: a tree of spans written as 1.6 writes its traces (the
//! `treeprint` package): `.` at the root, each span a branch, its labels under a `labels`
//! branch, then its fields, then its children; `├── ` before every item but the last of
//! its branch, `└── ` before the last, and below an item that is not the last, `│`
//! followed by two no-break spaces and a space (treeprint's padding).

pub(super) struct Span {
    pub(super) name: &'static str,
    /// In key order.
    pub(super) labels: Vec<(&'static str, String)>,
    /// Each written `key: value`, in the order given.
    pub(super) fields: Vec<(&'static str, String)>,
    pub(super) children: Vec<Span>,
}

impl Span {
    pub(super) fn new(name: &'static str) -> Span {
        Span {
            name,
            labels: Vec::new(),
            fields: Vec::new(),
            children: Vec::new(),
        }
    }
}

/// One line of the tree: its text, and the items under it.
struct Item {
    text: String,
    under: Vec<Item>,
}

/// The tree's lines, ending with the empty line after its last newline (as 1.6 splits
/// it).
pub(super) fn lines(root: &Span) -> Vec<String> {
    let mut out = vec![".".to_owned()];
    write(&[item(root)], "", &mut out);
    out.push(String::new());
    out
}

fn item(span: &Span) -> Item {
    let mut under = Vec::new();
    if !span.labels.is_empty() {
        under.push(Item {
            text: "labels".into(),
            under: span
                .labels
                .iter()
                .map(|(k, v)| Item {
                    text: format!("{k}: {v}"),
                    under: Vec::new(),
                })
                .collect(),
        });
    }
    under.extend(span.fields.iter().map(|(k, v)| Item {
        text: format!("{k}: {v}"),
        under: Vec::new(),
    }));
    under.extend(span.children.iter().map(item));
    Item {
        text: span.name.to_owned(),
        under,
    }
}

fn write(items: &[Item], prefix: &str, out: &mut Vec<String>) {
    for (i, it) in items.iter().enumerate() {
        let last = i + 1 == items.len();
        out.push(format!(
            "{prefix}{}{}",
            if last { "└── " } else { "├── " },
            it.text
        ));
        let deeper = format!("{prefix}{}", if last { "    " } else { "│\u{a0}\u{a0} " });
        write(&it.under, &deeper, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape 1.6 answers for a statement with one read in one shard.
    #[test]
    fn spans_are_written_as_treeprint_writes_them() {
        let mut root = Span::new("select");
        root.fields.push(("total_time", "1ms".into()));
        let mut cursor = Span::new("build_cursor");
        cursor.labels.push(("statement", "SELECT x".into()));
        let mut scanner = Span::new("iterator_scanner");
        scanner.labels.push(("expr", "mean(x::float)".into()));
        cursor.children.push(scanner);
        root.children.push(cursor);
        assert_eq!(
            lines(&root),
            [
                ".",
                "└── select",
                "    ├── total_time: 1ms",
                "    └── build_cursor",
                "        ├── labels",
                "        │\u{a0}\u{a0} └── statement: SELECT x",
                "        └── iterator_scanner",
                "            └── labels",
                "                └── expr: mean(x::float)",
                "",
            ]
        );
    }
}
