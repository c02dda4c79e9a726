//! `SELECT`: per measurement the sources name, a scan of its series (rows in the time range
//! that pass the condition, with the fields the statement needs), then either the raw rows
//! (and expressions of them) or their aggregates and transformations
//! ([`super::aggregate`]); a subquery's result is read as such a scan
//! ([`super::subquery`]). INTO is refused with a clear error, never answered wrongly.

use super::aggregate::Folder;
use super::error::QueryError;
use super::eval::{judged_by_tags, matches, series_may_match, time_range, Regexes, Row};
use super::limits::{Held, QueryLimits};
use super::parser::ast::{
    BinaryOp, DataType, Expr, Fill, MeasurementName, SelectStatement, Source,
};
use super::plan::{self, column_names, eval_row, reads_any, Kind, Node, Plan};
use super::result::Series;
use super::rows::{answer_row_bytes, descending, json_value, limit, SeriesRows, ROWS_PER_CHARGE};
use super::scan::{Folded, Scan, SelectContext};
use crate::line_protocol::FieldValue;
use crate::storage::column::{Column, FieldType};
use crate::storage::series_index::TagSelector;
use crate::storage::shard::{Part, SeriesParts, SeriesRead};
use crate::storage::tombstone;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

enum Output<'a> {
    Field(usize),
    Tag(String),
    /// A compiled expression of fields.
    Expr(&'a Node),
}

pub fn execute(stmt: &SelectStatement, ctx: &SelectContext<'_>) -> Result<Vec<Series>, QueryError> {
    if stmt.target.is_some() {
        return Err(QueryError::not_supported(
            "SELECT ... INTO is not supported yet",
        ));
    }
    let interval = stmt.group_by_interval().map_err(QueryError::invalid)?;
    let plain = stmt
        .fields
        .iter()
        .all(|f| matches!(f.expr, Expr::VarRef(_) | Expr::Wildcard(_)));
    if plain && interval > 0 {
        return Err(QueryError::invalid(
            "GROUP BY requires at least one aggregate function",
        ));
    }
    let offset = super::aggregate::time_offset(stmt);
    let range = time_range(stmt.condition.as_ref(), ctx.now);
    ctx.limits.check_buckets(range, interval, offset, ctx.now)?;
    // One measurement from several policies or databases is read as one (targets come in
    // name order).
    let mut inputs: Vec<Input> = Vec::new();
    for target in targets(stmt, ctx)? {
        match inputs.last_mut() {
            Some(Input::Stored(same)) if same[0].measurement == target.measurement => {
                same.push(target)
            }
            _ => inputs.push(Input::Stored(vec![target])),
        }
    }
    for source in &stmt.sources {
        if let Source::Subquery(inner) = source {
            let scans = super::subquery::scans(stmt, inner, ctx)?;
            inputs.extend(scans.into_iter().map(|s| Input::Derived(Box::new(s))));
        }
    }
    inputs.sort_by(|a, b| a.measurement().cmp(b.measurement()));
    // 1.x merges the rows of sources of one name into one series; that is not done here.
    let clash = inputs.windows(2).any(|pair| {
        pair[0].measurement() == pair[1].measurement()
            && (matches!(pair[0], Input::Derived(_)) || matches!(pair[1], Input::Derived(_)))
    });
    if clash {
        return Err(QueryError::not_supported(
            "a subquery with another source of the same measurement is not supported yet",
        ));
    }
    let expanded;
    let stmt = if stmt.fields.iter().any(|f| calls_pattern(&f.expr)) {
        // The fields of every measurement read (the first type seen of each name).
        let mut fields: BTreeMap<String, FieldType> = BTreeMap::new();
        for input in &inputs {
            match input {
                Input::Stored(targets) => {
                    for t in targets {
                        for shard in ctx.storage.shards_of(&t.database, Some(&t.policy)) {
                            for (name, kind) in shard.field_types(&t.measurement) {
                                fields.entry(name).or_insert(kind);
                            }
                        }
                    }
                }
                Input::Derived(scan) => {
                    for name in &scan.fields {
                        if let Some(kind) = field_type(scan, name) {
                            fields.entry(name.clone()).or_insert(stored_type(kind));
                        }
                    }
                }
            }
        }
        expanded = plan::expand_wildcard_calls(stmt, &fields)?;
        if expanded.fields.is_empty() {
            return Ok(Vec::new());
        }
        &expanded
    } else {
        stmt
    };
    if inputs.len() == 1 {
        let input = inputs.pop().expect("one input");
        return execute_one(stmt, ctx, input, interval, plain);
    }
    // Several measurements: each answers as its own series (in name order, reversed for
    // ORDER BY time DESC; SLIMIT and SOFFSET applying to each as 1.x does), and `*` yields
    // the union of their columns.
    if descending(stmt) {
        inputs.reverse();
    }
    let wildcard = stmt
        .fields
        .iter()
        .any(|f| matches!(f.expr, Expr::Wildcard(_)));
    // 1.x expands `*` before reading, so a measurement without rows in range adds its
    // columns too.
    let mut union = BTreeSet::new();
    if wildcard {
        let range = time_range(stmt.condition.as_ref(), ctx.now);
        for input in &inputs {
            if let Input::Stored(targets) = input {
                for target in targets {
                    union.extend(wildcard_columns(stmt, ctx, target, range)?);
                }
            }
        }
    }
    let mut series = Vec::new();
    for input in inputs {
        series.extend(execute_one(stmt, ctx, input, interval, plain)?);
    }
    if wildcard {
        union.extend(
            series
                .iter()
                .flat_map(|s| s.columns.iter().skip(1).cloned()),
        );
        let mut union: Vec<String> = union.into_iter().collect();
        union.insert(0, "time".to_owned());
        for s in &mut series {
            let at: Vec<Option<usize>> = union
                .iter()
                .map(|c| s.columns.iter().position(|own| own == c))
                .collect();
            for row in &mut s.values {
                *row = at
                    .iter()
                    .map(|i| i.map_or(Value::Null, |i| row[i].clone()))
                    .collect();
            }
            s.columns = union.clone();
        }
    }
    Ok(series)
}

/// Whether an expression is calls around `*` or a regular expression (`mean(*)`).
fn calls_pattern(e: &Expr) -> bool {
    match e {
        Expr::Call(c) => match c.args.first() {
            Some(Expr::Wildcard(_) | Expr::Regex(_)) => true,
            Some(inner) => calls_pattern(inner),
            None => false,
        },
        _ => false,
    }
}

/// What a statement reads: a measurement in storage (from one or several policies or
/// databases), or the rows of a subquery.
enum Input {
    Stored(Vec<Target>),
    Derived(Box<Scan>),
}

impl Input {
    fn measurement(&self) -> &str {
        match self {
            Input::Stored(targets) => &targets[0].measurement,
            Input::Derived(scan) => &scan.measurement,
        }
    }
}

fn stored_type(t: DataType) -> FieldType {
    match t {
        DataType::Integer => FieldType::Integer,
        DataType::Unsigned => FieldType::Unsigned,
        DataType::String => FieldType::String,
        DataType::Boolean => FieldType::Boolean,
        _ => FieldType::Float,
    }
}

fn execute_one(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
    input: Input,
    interval: i64,
    plain: bool,
) -> Result<Vec<Series>, QueryError> {
    // A plan that reads each field's values in time order alone (see `by_columns`).
    let foldable = |fields: &[String]| {
        (!plain)
            .then(|| plan::compile(stmt, fields, interval).ok())
            .flatten()
            .filter(super::aggregate::by_columns)
    };
    let scan = match input {
        Input::Stored(targets) => match targets.as_slice() {
            [target] => scan(stmt, ctx, target, &foldable)?,
            // 1.x applies them to each source before joining its series.
            _ if stmt.slimit > 0 || stmt.soffset > 0 => {
                return Err(QueryError::not_supported(
                    "SLIMIT and SOFFSET over one measurement from several retention \
                            policies or databases are not supported yet",
                ))
            }
            several => merged(
                &ctx.limits,
                several
                    .iter()
                    .map(|t| scan(stmt, ctx, t, &|_| None))
                    .collect::<Result<_, _>>()?,
            )?,
        },
        Input::Derived(scan) => *scan,
    };
    let folded = scan.folded.as_ref();
    ctx.limits
        .check_series(scan.series.len() + folded.map_or(0, |f| f.series))?;
    if ctx.limits.max_points > 0 {
        let values = folded.map_or(0, |f| f.values);
        ctx.limits
            .check_points(values + scan.series.iter().map(SeriesRows::values).sum::<usize>())?;
    }
    let plan = if plain {
        None
    } else {
        Some(plan::compile(stmt, &scan.fields, interval)?)
    };
    match &plan {
        Some(p) if p.kind != Kind::Raw => super::aggregate::execute(stmt, ctx, scan, p),
        // fill() without a function has nothing to fill: 1.x ignores it, but refuses
        // the two that need one.
        _ if matches!(stmt.fill, Some(Fill::None | Fill::Linear)) => {
            let fill = if stmt.fill == Some(Fill::None) {
                "none"
            } else {
                "linear"
            };
            Err(QueryError::invalid(format!(
                "fill({fill}) must be used with a function"
            )))
        }
        _ => {
            if plan.is_some() {
                plan::check_types(stmt, &|name| field_type(&scan, name))?;
            }
            raw(stmt, ctx, scan, plan.as_ref())
        }
    }
}

/// A field's type, from the first value the scan found of it.
fn field_type(scan: &Scan, name: &str) -> Option<DataType> {
    let i = scan.fields.iter().position(|f| f == name)?;
    let value = scan
        .series
        .iter()
        .flat_map(|s| s.rows())
        .find_map(|(_, values)| values.get(i)?.as_ref())?;
    Some(match value {
        FieldValue::Float(_) => DataType::Float,
        FieldValue::Integer(_) => DataType::Integer,
        FieldValue::Unsigned(_) => DataType::Unsigned,
        FieldValue::String(_) => DataType::String,
        FieldValue::Boolean(_) => DataType::Boolean,
    })
}

/// Field names a statement reads: those it selects (all for `*`) and those its
/// condition compares.
fn needed_fields(stmt: &SelectStatement, field_keys: &HashSet<String>) -> Vec<String> {
    fn refs(e: &Expr, out: &mut BTreeSet<String>) {
        match e {
            Expr::VarRef(v) => {
                out.insert(v.name.clone());
            }
            Expr::Call(c) => c.args.iter().for_each(|a| refs(a, out)),
            Expr::Binary(b) => {
                refs(&b.lhs, out);
                refs(&b.rhs, out);
            }
            Expr::Paren(e) => refs(e, out),
            Expr::Distinct(name) => {
                out.insert(name.clone());
            }
            _ => {}
        }
    }
    let mut names = BTreeSet::new();
    for f in &stmt.fields {
        if matches!(f.expr, Expr::Wildcard(_)) {
            names.extend(field_keys.iter().cloned());
        }
        refs(&f.expr, &mut names);
    }
    if let Some(c) = &stmt.condition {
        refs(c, &mut names);
    }
    names
        .into_iter()
        .filter(|n| field_keys.contains(n))
        .collect()
}

/// One measurement a statement reads, in a database and retention policy that exist.
pub struct Target {
    database: String,
    policy: String,
    measurement: String,
}

/// The measurements the statement's sources name, their regular expressions matched
/// against the measurements the retention policy holds; in name order, each once.
fn targets(stmt: &SelectStatement, ctx: &SelectContext<'_>) -> Result<Vec<Target>, QueryError> {
    let mut out: Vec<Target> = Vec::new();
    for source in &stmt.sources {
        // Subqueries are read by `super::subquery`.
        let Source::Measurement(source) = source else {
            continue;
        };
        let database = source
            .database
            .as_deref()
            .or(ctx.database)
            .ok_or(QueryError::DatabaseRequired)?;
        let db = ctx
            .catalog
            .databases
            .get(database)
            .ok_or_else(|| QueryError::DatabaseNotFound(database.to_owned()))?;
        let policy = source
            .retention_policy
            .clone()
            .unwrap_or_else(|| db.default_policy.clone());
        if !db.policies.contains_key(&policy) {
            return Err(QueryError::RetentionPolicyNotFound(policy));
        }
        let names: Vec<String> = match &source.name {
            MeasurementName::Name(name) => vec![name.clone()],
            MeasurementName::Regex(r) => {
                let re = regex::Regex::new(&r.pattern)?;
                // 1.x matches the names of its database-wide index, every policy's.
                let mut all = BTreeSet::new();
                for shard in ctx.storage.shards_of(database, None) {
                    all.extend(shard.measurements());
                }
                all.into_iter().filter(|m| re.is_match(m)).collect()
            }
        };
        for measurement in names {
            let target = Target {
                database: database.to_owned(),
                policy: policy.clone(),
                measurement,
            };
            let seen = out.iter().any(|t| {
                (&t.database, &t.policy, &t.measurement)
                    == (&target.database, &target.policy, &target.measurement)
            });
            if !seen {
                out.push(target);
            }
        }
    }
    out.sort_by(|a, b| a.measurement.cmp(&b.measurement));
    Ok(out)
}

/// One measurement read from several policies or databases is one answer in 1.x: series
/// of the same tags are joined, their rows in time order (of equal times, the earlier
/// source's first), over the union of the fields.
fn merged(limits: &QueryLimits, scans: Vec<Scan>) -> Result<Scan, QueryError> {
    let fields: Vec<String> = scans
        .iter()
        .flat_map(|s| s.fields.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    type Rows = Vec<(i64, Vec<Option<FieldValue>>)>;
    let mut by_tags: BTreeMap<Vec<(String, String)>, Rows> = BTreeMap::new();
    let (mut field_keys, mut tag_keys) = (HashSet::new(), BTreeSet::new());
    let (mut measurement, mut range) = (String::new(), (i64::MIN, i64::MAX));
    for scan in scans {
        let at: Vec<usize> = scan
            .fields
            .iter()
            .map(|f| {
                fields
                    .binary_search(f)
                    .expect("every scan's fields are merged")
            })
            .collect();
        // The joined rows are a copy of the scans' (charged as they were read), charged
        // too: for a moment both are held.
        let row_bytes = std::mem::size_of::<(i64, Vec<Option<FieldValue>>)>()
            + fields.len() * std::mem::size_of::<Option<FieldValue>>();
        for s in &scan.series {
            limits.check_deadline()?;
            limits.charge(s.times.len() * row_bytes)?;
            let rows = by_tags.entry(s.tags.clone()).or_default();
            for (time, values) in s.rows() {
                let mut row = vec![None; fields.len()];
                for (v, &i) in values.iter().zip(&at) {
                    row[i] = v.clone();
                }
                rows.push((*time, row));
            }
        }
        field_keys.extend(scan.field_keys);
        tag_keys.extend(scan.tag_keys);
        (measurement, range) = (scan.measurement, (scan.start, scan.end));
    }
    let series = by_tags
        .into_iter()
        .map(|(tags, mut rows)| {
            rows.sort_by_key(|(time, _)| *time);
            let mut joined = SeriesRows::new(tags, fields.len());
            for (time, values) in rows {
                joined.push(time, values);
            }
            joined
        })
        .collect();
    Ok(Scan {
        measurement,
        fields,
        field_keys,
        tag_keys,
        series,
        start: range.0,
        end: range.1,
        folded: None,
    })
}

/// The shards of the target's policy whose groups overlap [start, end].
fn shards_in(
    ctx: &SelectContext<'_>,
    target: &Target,
    (start, end): (i64, i64),
) -> Result<Vec<Arc<crate::storage::Shard>>, QueryError> {
    ctx.storage
        .check_readable(&target.database, Some(&target.policy), (start, end))?;
    Ok(ctx
        .storage
        .shards_of(&target.database, Some(&target.policy))
        .into_iter()
        .filter(|s| s.info.end > start && s.info.start <= end)
        .collect())
}

/// As 1.x's database-wide index does, `*` and GROUP BY * take every tag key of the
/// measurement, of every policy, whether or not its series are read.
fn tag_keys_of(ctx: &SelectContext<'_>, database: &str, measurement: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for shard in ctx.storage.shards_of(database, None) {
        keys.extend(shard.tag_keys(measurement));
    }
    keys
}

/// The columns `*` stands for in `target` over `range`: the fields of its shards there
/// and the measurement's tag keys but those grouped by (none when no shard is in range).
fn wildcard_columns(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
    target: &Target,
    range: (i64, i64),
) -> Result<BTreeSet<String>, QueryError> {
    let shards = shards_in(ctx, target, range)?;
    if shards.is_empty() {
        return Ok(BTreeSet::new());
    }
    let mut columns: BTreeSet<String> = shards
        .iter()
        .flat_map(|s| s.field_types(&target.measurement).into_keys())
        .collect();
    let tag_keys = tag_keys_of(ctx, &target.database, &target.measurement);
    let grouped = super::aggregate::group_tags(stmt, &tag_keys)?;
    columns.extend(tag_keys.into_iter().filter(|k| !grouped.contains(k)));
    Ok(columns)
}

/// Scans the target's series. `foldable` gives, for the fields scanned, the plan of a
/// statement whose aggregates take each field's values in time order alone; the series
/// are then reduced as they are read when nothing judges rows one by one.
fn scan(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
    target: &Target,
    foldable: &dyn Fn(&[String]) -> Option<Plan>,
) -> Result<Scan, QueryError> {
    let (database, measurement) = (target.database.as_str(), &target.measurement);
    let mut regexes = Regexes::default();
    if let Some(cond) = &stmt.condition {
        Regexes::compile(cond, &mut regexes)?;
    }
    let (start, end) = time_range(stmt.condition.as_ref(), ctx.now);
    // Transformations of aggregates also read the window before the range (after it, in
    // descending order; see `Transform::reads_window_before`): its rows are read too, and
    // judged by the rest of the condition as if they were at the range's edge.
    let interval = stmt.group_by_interval().map_err(QueryError::invalid)?;
    let extend = plan::reads_window_before(stmt) && interval > 0;
    let read_from = if extend && !descending(stmt) && start != i64::MIN {
        start.saturating_sub(interval)
    } else {
        start
    };
    let read_to = if extend && descending(stmt) && end != i64::MAX {
        end.saturating_add(interval)
    } else {
        end
    };
    let shards = shards_in(ctx, target, (read_from, read_to))?;
    let mut field_keys: HashSet<String> = HashSet::new();
    for shard in &shards {
        field_keys.extend(shard.field_types(measurement).into_keys());
    }
    let fields = needed_fields(stmt, &field_keys);

    // Gather every series' column parts from the shards the time range touches.
    let selector = tag_selector(stmt.condition.as_ref(), &field_keys);
    let keep = |tags: &[(String, String)]| {
        series_may_match(stmt.condition.as_ref(), tags, &field_keys, &regexes)
    };
    let read = SeriesRead {
        measurement,
        start: read_from,
        end: read_to,
        fields: &fields,
        selector: &selector,
        keep: &keep,
    };
    let mut gathered: BTreeMap<Arc<str>, SeriesParts> = BTreeMap::new();
    let mut tag_keys: BTreeSet<String> = BTreeSet::new();
    for shard in &shards {
        ctx.limits.check_deadline()?;
        for s in shard.series_of(&read) {
            match gathered.get_mut(&s.key) {
                Some(known) => {
                    for (mine, more) in known.fields.iter_mut().zip(s.fields) {
                        mine.extend(more);
                    }
                }
                None => {
                    gathered.insert(s.key.clone(), s);
                }
            }
        }
    }
    if !shards.is_empty() {
        tag_keys = tag_keys_of(ctx, database, measurement);
    }

    let rows = RowBuilder {
        condition: stmt
            .condition
            .as_ref()
            .map(|c| (c, !judged_by_tags(c, &field_keys, ctx.now))),
        fields: &fields,
        field_keys: &field_keys,
        regexes: &regexes,
        now: ctx.now,
        range: (read_from, read_to),
        judged_at: (start, end),
        cap: row_cap(stmt, &fields).map(|n| (n, descending(stmt))),
        limits: &ctx.limits,
    };
    let plan = foldable(&fields);
    let mut scan = Scan {
        measurement: measurement.clone(),
        fields: Vec::new(),
        field_keys: HashSet::new(),
        tag_keys: BTreeSet::new(),
        series: Vec::new(),
        start,
        end,
        folded: None,
    };
    // Window starts are those of UTC unless tz() moves them: then the rows are kept.
    match &plan {
        Some(plan) if rows.per_row().is_none() && ctx.zone.is_none() => {
            let folder = Folder::new(stmt, plan, &tag_keys)?;
            let parts = parallel_chunks(gathered.into_values().collect(), |chunk| {
                let mut folded = Folded::default();
                for s in chunk {
                    if let Some((tags, columns, _held)) = rows.columns(s)? {
                        folder.fold(&mut folded, &tags, &columns, &ctx.limits)?;
                    }
                }
                Ok::<Folded, QueryError>(folded)
            });
            let mut all = Folded::default();
            for part in parts {
                all.merge(part?, &plan.aggregates);
            }
            scan.folded = Some(all);
        }
        _ => {
            scan.series = parallel_map(gathered.into_values().collect(), |s| rows.build(s))
                .into_iter()
                .filter_map(Result::transpose)
                .collect::<Result<Vec<SeriesRows>, QueryError>>()?;
        }
    }
    scan.fields = fields;
    scan.field_keys = field_keys;
    scan.tag_keys = tag_keys;
    Ok(scan)
}

/// The series a condition's tag equalities narrow a read to, from the shards' tag indexes.
fn tag_selector(condition: Option<&Expr>, field_keys: &HashSet<String>) -> TagSelector {
    match condition {
        Some(Expr::Paren(e)) => tag_selector(Some(e), field_keys),
        Some(Expr::Binary(b)) if matches!(b.op, BinaryOp::And | BinaryOp::Or) => {
            let sides = vec![
                tag_selector(Some(&b.lhs), field_keys),
                tag_selector(Some(&b.rhs), field_keys),
            ];
            if b.op == BinaryOp::And {
                TagSelector::And(sides)
            } else {
                TagSelector::Or(sides)
            }
        }
        Some(Expr::Binary(b)) if b.op == BinaryOp::Eq => match (&b.lhs, &b.rhs) {
            (Expr::VarRef(v), Expr::String(value))
                if v.name != "time" && !field_keys.contains(&v.name) =>
            {
                TagSelector::Eq(v.name.clone(), value.clone())
            }
            _ => TagSelector::All,
        },
        _ => TagSelector::All,
    }
}

/// How many rows of each series a raw query can show at most (offset + limit, from the
/// end it reads first), when every row read is one it shows; None when all are needed.
fn row_cap(stmt: &SelectStatement, fields: &[String]) -> Option<usize> {
    if stmt.limit == 0 {
        return None;
    }
    let mut shown: HashSet<&str> = HashSet::new();
    for f in &stmt.fields {
        match &f.expr {
            Expr::Wildcard(_) => return Some(stmt.offset.saturating_add(stmt.limit) as usize),
            Expr::VarRef(v) if v.data_type != Some(DataType::Tag) => {
                shown.insert(&v.name);
            }
            Expr::VarRef(_) => {}
            _ => return None,
        }
    }
    fields
        .iter()
        .all(|f| shown.contains(f.as_str()))
        .then(|| stmt.offset.saturating_add(stmt.limit) as usize)
}

/// A series' tags and its resolved columns, one per scanned field, charged to the query's
/// memory budget while they live.
type SeriesColumns = (Vec<(String, String)>, Vec<Option<Column>>, Held);

/// What a loaded column holds per row: a time, a version and a value.
const COLUMN_ROW_BYTES: usize = 24;

/// Turns one series' column parts into its rows.
struct RowBuilder<'a> {
    /// The condition, and whether rows must be judged one by one (else it is judged once,
    /// on the series' tags).
    condition: Option<(&'a Expr, bool)>,
    fields: &'a [String],
    field_keys: &'a HashSet<String>,
    regexes: &'a Regexes,
    now: i64,
    /// The time range read.
    range: (i64, i64),
    /// The condition's own time range: rows read outside it are judged at its edge.
    judged_at: (i64, i64),
    /// Rows wanted from the start (ascending) or the end (descending); see [`row_cap`].
    cap: Option<(usize, bool)>,

    limits: &'a QueryLimits,
}

impl RowBuilder<'_> {
    /// The condition when it judges rows one by one.
    fn per_row(&self) -> Option<&Expr> {
        self.condition.filter(|(_, by_row)| *by_row).map(|(c, _)| c)
    }

    /// A series' tags and resolved columns within the range, or None when its tags fail
    /// a condition judged once per series.
    fn columns(&self, parts: SeriesParts) -> Result<Option<SeriesColumns>, QueryError> {
        self.limits.check_deadline()?;
        let (from, to) = self.range;
        let tags: Vec<(String, String)> = parts.tags.to_vec();
        let per_row = self.per_row();
        if let Some((cond, false)) = self.condition {
            if !self.judge(cond, &tags, self.judged_at.0, &HashMap::new()) {
                return Ok(None);
            }
        }
        let mut fields = parts.fields;
        // (A block's count says how many rows it holds only when no delete took some.)
        if let (Some((wanted, descending)), None, true) =
            (self.cap, per_row, parts.deleted.is_empty())
        {
            skip_parts_beyond(&mut fields, wanted, descending, self.range);
        }
        let mut columns: Vec<Option<Column>> = Vec::with_capacity(fields.len());
        let mut bytes = 0;
        for field in fields {
            // A series may have 100,000 fields: a long read of one series stops too.
            if columns.len() % 1024 == 1023 {
                self.limits.check_deadline()?;
            }
            let loaded = field
                .into_iter()
                .map(|p| {
                    let column = p.load()?;
                    Ok(tombstone::without_deleted(&column, &parts.deleted).unwrap_or(column))
                })
                .collect::<Result<Vec<Column>, QueryError>>()?;
            let column = Column::resolve(loaded).map(|c| c.keep_time(from, to));
            bytes += column.as_ref().map_or(0, |c| c.len() * COLUMN_ROW_BYTES);
            columns.push(column);
        }
        let held = self.limits.hold(bytes)?;
        Ok(Some((tags, columns, held)))
    }

    fn build(&self, parts: SeriesParts) -> Result<Option<SeriesRows>, QueryError> {
        let Some((tags, columns, _held)) = self.columns(parts)? else {
            return Ok(None);
        };
        let row_bytes =
            std::mem::size_of::<i64>() + columns.len() * std::mem::size_of::<Option<FieldValue>>();
        let mut charged = 0;
        let per_row = self.per_row();
        let times = union_of_times(&columns);
        let order: Box<dyn Iterator<Item = usize>> = match self.cap {
            Some((_, true)) => Box::new((0..times.len()).rev()),
            _ => Box::new(0..times.len()),
        };
        let wanted = self.cap.map_or(usize::MAX, |(n, _)| n);
        let mut cursor = vec![0usize; columns.len()];
        let mut rows = SeriesRows::new(tags, columns.len());
        let mut values: Vec<Option<FieldValue>> = Vec::with_capacity(columns.len());
        for at in order {
            if rows.times.len() == wanted {
                break;
            }
            let time = times[at];
            values.clear();
            values.extend(columns.iter().zip(cursor.iter_mut()).map(|(c, i)| {
                let c = c.as_ref()?;
                // A column with a value at every row (the usual case) is at the row's
                // own position; others move one step at a time, or are searched.
                if c.len() == times.len() {
                    return Some(c.values.get(at));
                }
                if c.times.get(*i) != Some(&time) {
                    *i = if c.times.get(*i + 1) == Some(&time) {
                        *i + 1
                    } else {
                        c.times.partition_point(|&t| t < time)
                    };
                }
                (c.times.get(*i) == Some(&time)).then(|| c.values.get(*i))
            }));
            if let Some(cond) = per_row {
                let at: HashMap<&str, FieldValue> = self
                    .fields
                    .iter()
                    .zip(&values)
                    .filter_map(|(f, v)| Some((f.as_str(), v.clone()?)))
                    .collect();
                let time = time.max(self.judged_at.0).min(self.judged_at.1);
                if !self.judge(cond, &rows.tags, time, &at) {
                    continue;
                }
            }
            rows.push(time, values.drain(..));
            if rows.times.len() - charged == ROWS_PER_CHARGE {
                self.limits.charge(ROWS_PER_CHARGE * row_bytes)?;
                self.limits.check_deadline()?;
                charged = rows.times.len();
            }
        }
        self.limits
            .charge((rows.times.len() - charged) * row_bytes)?;
        if matches!(self.cap, Some((_, true))) {
            rows.reverse();
        }
        Ok((!rows.is_empty()).then_some(rows))
    }

    fn judge(
        &self,
        cond: &Expr,
        tags: &[(String, String)],
        time: i64,
        fields: &HashMap<&str, FieldValue>,
    ) -> bool {
        let row = Row {
            time,
            tags,
            fields,
            field_keys: self.field_keys,
        };
        matches(cond, &row, self.now, self.regexes)
    }
}

/// Leaves out the parts a read of only the first (or, descending, the last) `wanted` rows
/// of a series cannot need: those wholly before (after) a part that alone holds `wanted`
/// distinct times within the range.
fn skip_parts_beyond(fields: &mut [Vec<Part>], wanted: usize, descending: bool, range: (i64, i64)) {
    let whole = |lo: i64, hi: i64| range.0 <= lo && hi <= range.1;
    let bounds = fields.iter().flatten().map(Part::bounds);
    let edge = if descending {
        bounds
            .filter(|&(lo, hi, n)| n >= wanted && whole(lo, hi))
            .map(|(lo, _, _)| lo)
            .max()
    } else {
        bounds
            .filter(|&(lo, hi, n)| n >= wanted && whole(lo, hi))
            .map(|(_, hi, _)| hi)
            .min()
    };
    let Some(edge) = edge else { return };
    for parts in fields.iter_mut() {
        parts.retain(|p| {
            let (lo, hi, _) = p.bounds();
            if descending {
                hi >= edge
            } else {
                lo <= edge
            }
        });
    }
}

/// Every time at which some column has a value, in order.
fn union_of_times(columns: &[Option<Column>]) -> Vec<i64> {
    let mut present = columns.iter().flatten();
    let Some(first) = present.next() else {
        return Vec::new();
    };
    // Fields written together share their times: usually one column's times are all.
    if present.clone().all(|c| c.times == first.times) {
        return first.times.clone();
    }
    let mut all: Vec<i64> = columns
        .iter()
        .flatten()
        .flat_map(|c| c.times.iter().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// `work` over the items, on every core when there are enough of them to be worth it;
/// the results in the items' order.
fn parallel_map<T: Send, R: Send>(items: Vec<T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    parallel_chunks(items, |chunk| {
        chunk.into_iter().map(&work).collect::<Vec<R>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// `work` over consecutive chunks of the items, a chunk per core when there are enough
/// items to be worth it (else one chunk); the results in the chunks' order.
fn parallel_chunks<T: Send, R: Send>(items: Vec<T>, work: impl Fn(Vec<T>) -> R + Sync) -> Vec<R> {
    const PER_THREAD: usize = 64;
    // Asking the system reads cgroup files: once per process is enough.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let threads = cores.min(items.len() / PER_THREAD);
    if threads <= 1 {
        return vec![work(items)];
    }
    let chunk = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut items = items.into_iter();
    for _ in 0..threads {
        chunks.push(items.by_ref().take(chunk).collect());
    }
    let work = &work;
    std::thread::scope(|scope| {
        let mut chunks = chunks.into_iter();
        let own = chunks.next().unwrap_or_default();
        let others: Vec<_> = chunks.map(|c| scope.spawn(move || work(c))).collect();
        let mut out = vec![work(own)];
        for handle in others {
            match handle.join() {
                Ok(part) => out.push(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

fn raw(
    stmt: &SelectStatement,
    ctx: &SelectContext<'_>,
    scan: Scan,
    plan: Option<&Plan>,
) -> Result<Vec<Series>, QueryError> {
    let field_index = |name: &str| scan.fields.iter().position(|f| f == name);
    let names = column_names(&stmt.fields);
    // GROUP BY tags: a series per combination of their values, without them in `*`.
    let group_tags = super::aggregate::group_tags(stmt, &scan.tag_keys)?;
    let mut outputs: Vec<(String, Output)> = Vec::new();
    for (index, field) in stmt.fields.iter().enumerate() {
        match &field.expr {
            Expr::Wildcard(_) => {
                let mut all: Vec<(String, Output)> = scan
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.clone(), Output::Field(i)))
                    .collect();
                all.extend(
                    scan.tag_keys
                        .iter()
                        .filter(|t| !group_tags.contains(t))
                        .map(|t| (t.clone(), Output::Tag(t.clone()))),
                );
                all.sort_by(|a, b| a.0.cmp(&b.0));
                outputs.extend(all);
            }
            Expr::VarRef(v) if v.name == "time" => {}
            Expr::VarRef(v) => {
                let name = names[index].clone();
                let as_tag = matches!(v.data_type, Some(super::parser::ast::DataType::Tag))
                    || (!scan.field_keys.contains(&v.name) && scan.tag_keys.contains(&v.name));
                let out = match (as_tag, field_index(&v.name)) {
                    (false, Some(i)) => Output::Field(i),
                    (false, None) if !scan.tag_keys.contains(&v.name) => Output::Field(usize::MAX),
                    _ => Output::Tag(v.name.clone()),
                };
                outputs.push((name, out));
            }
            _ => match plan {
                Some(p) => outputs.push((names[index].clone(), Output::Expr(&p.fields[index]))),
                None => {
                    return Err(QueryError::not_supported(format!(
                        "{} in SELECT is not supported yet",
                        field.expr
                    )))
                }
            },
        }
    }
    if scan.field_keys.is_empty() {
        return Ok(Vec::new()); // no such measurement (or no data in range): empty, not an error
    }
    if !outputs
        .iter()
        .any(|(_, o)| matches!(o, Output::Field(_) | Output::Expr(_)))
    {
        return Err(QueryError::invalid(
            "statement must have at least one field in select clause",
        ));
    }
    let mut columns = vec!["time".to_owned()];
    columns.extend(outputs.iter().map(|(name, _)| name.clone()));

    let mut groups: BTreeMap<Vec<(String, String)>, Vec<&SeriesRows>> = BTreeMap::new();
    for s in &scan.series {
        let key = group_tags
            .iter()
            .map(|k| {
                let value = s.tags.iter().find(|(t, _)| t == k).map(|(_, v)| v);
                (k.clone(), value.cloned().unwrap_or_default())
            })
            .collect();
        groups.entry(key).or_default().push(s);
    }
    let row_bytes = answer_row_bytes(columns.len());
    let mut out = Vec::new();
    for (key, members) in groups {
        let mut rows: Vec<(i64, Vec<Value>)> = Vec::new();
        let mut charged = 0;
        for s in members {
            ctx.limits.check_deadline()?;
            for (time, values) in s.rows() {
                if rows.len() - charged >= ROWS_PER_CHARGE {
                    ctx.limits.charge((rows.len() - charged) * row_bytes)?;
                    ctx.limits.check_deadline()?;
                    charged = rows.len();
                }
                let mut out = Vec::with_capacity(columns.len());
                let mut any_field = false;
                for (_, o) in &outputs {
                    out.push(match o {
                        Output::Field(i) => match values.get(*i).and_then(Option::as_ref) {
                            Some(v) => {
                                any_field = true;
                                json_value(v)
                            }
                            None => Value::Null,
                        },
                        Output::Expr(node) => {
                            any_field |= reads_any(node, values);
                            eval_row(node, values).map_or(Value::Null, |v| json_value(&v))
                        }
                        Output::Tag(t) => s
                            .tags
                            .iter()
                            .find(|(k, _)| k == t)
                            .map_or(Value::Null, |(_, v)| Value::from(v.clone())),
                    });
                }
                if any_field {
                    rows.push((*time, out));
                }
            }
        }
        ctx.limits.charge((rows.len() - charged) * row_bytes)?;
        // Stable either way: rows of equal time keep their series order.
        if descending(stmt) {
            rows.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
        } else {
            rows.sort_by_key(|(t, _)| *t);
        }
        let mut values: Vec<Vec<Value>> = rows
            .into_iter()
            .skip(stmt.offset as usize)
            .take(limit(stmt.limit))
            .map(|(time, mut values)| {
                values.insert(0, ctx.time_value(time));
                values
            })
            .collect();
        // Collected in place: without this a LIMIT would keep every row's room.
        values.shrink_to_fit();
        if values.is_empty() {
            continue;
        }
        out.push(Series {
            name: scan.measurement.clone(),
            tags: (!group_tags.is_empty()).then(|| key.into_iter().collect()),
            columns: columns.clone(),
            values,
        });
    }
    let mut out: Vec<Series> = out
        .into_iter()
        .skip(stmt.soffset as usize)
        .take(limit(stmt.slimit))
        .collect();
    // As for aggregates: SLIMIT picks in tag order, the query's order orders the series.
    if descending(stmt) {
        out.reverse();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_of(fields: &[&str], points: i64) -> Scan {
        let mut series = SeriesRows::new(Vec::new(), fields.len());
        for t in 0..points {
            series.push(t, fields.iter().map(|_| Some(FieldValue::Integer(t))));
        }
        Scan {
            measurement: "m".into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            field_keys: HashSet::new(),
            tag_keys: BTreeSet::new(),
            series: vec![series],
            start: i64::MIN,
            end: i64::MAX,
            folded: None,
        }
    }

    /// Joining one measurement read from several policies copies their rows: the copy is
    /// charged to the query's budget, and past it the query stops.
    #[test]
    fn joining_scans_past_the_memory_budget_is_refused() {
        let limits = QueryLimits::with_budget(1);
        let scans = || vec![scan_of(&["a"], 20_000), scan_of(&["b"], 20_000)];
        assert!(merged(&limits, scans())
            .is_err_and(|e| e.to_string().contains("max_request_memory_mib")));
        let joined = merged(&QueryLimits::default(), scans()).expect("no budget");
        assert_eq!(joined.fields, ["a", "b"]);
        assert_eq!(joined.series[0].times.len(), 40_000);
    }
}
