//! A scan of one target: the series its condition may match, from the shards in range,
//! read as rows, or folded into their windows as they are read when the plan allows.

use super::parallel::{parallel_chunks, parallel_map};
use super::rows::RowBuilder;
use super::targets::{shards_in, tag_keys_of, Target};
use crate::query::aggregate::Folder;
use crate::query::error::QueryError;
use crate::query::eval::{judged_by_tags, series_may_match, time_range, Regexes};
use crate::query::parser::ast::{BinaryOp, DataType, Expr, SelectStatement};
use crate::query::plan::{self, Plan};
use crate::query::rows::{descending, SeriesRows};
use crate::query::scan::FieldKeys;
use crate::query::scan::{Folded, Scan, SelectContext};
use crate::storage::series_index::TagSelector;
use crate::storage::shard::{SeriesParts, SeriesRead};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

/// Scans the target's series. `foldable` gives, for the fields scanned, the plan of a
/// statement whose aggregates take each field's values in time order alone; the series
/// are then reduced as they are read when nothing judges rows one by one.
pub(super) fn scan(
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
    let mut field_keys = FieldKeys::default();
    for shard in &shards {
        field_keys.extend(shard.field_types(measurement).into_keys());
    }
    let fields = needed_fields(stmt, &field_keys);

    // Gather every series' column parts from the shards the time range touches.
    let selector = tag_selector(stmt.condition.as_ref(), &field_keys, &regexes);
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
    let mut tag_keys = Arc::default();
    for shard in &shards {
        ctx.limits.check_deadline()?;
        let listed = ctx.read_stats.map(|s| (s, std::time::Instant::now()));
        let series = shard.series_of(&read);
        if let Some((stats, began)) = listed {
            stats.listed(&shard.info, measurement, &fields, &series, began.elapsed());
        }
        for mut s in series {
            // What deletes took is the shard's: clipped to its interval (its parts hold
            // only points within it), it is kept when a series' parts of several shards
            // are merged, and hides nothing of the others'.
            let last = shard.info.end.saturating_sub(1);
            for r in s.deleted.iter_mut() {
                r.min_time = r.min_time.max(shard.info.start);
                r.max_time = r.max_time.min(last);
            }
            s.deleted.retain(|r| r.min_time <= r.max_time);
            match gathered.get_mut(&s.key) {
                Some(known) => {
                    for (mine, more) in known.fields.iter_mut().zip(s.fields) {
                        mine.extend(more);
                    }
                    known.deleted.extend(s.deleted);
                }
                None => {
                    gathered.insert(s.key.clone(), s);
                }
            }
        }
    }
    // A first attempt on the request's thread gives up now, before any decoding, when
    // what it would read cannot fit its budget.
    if ctx.limits.is_inline_attempt() {
        let entries = gathered.values().flat_map(|s| s.fields.iter().flatten());
        ctx.limits
            .check_inline_entries(entries.map(|p| p.entries()).sum())?;
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
        cap: row_cap(stmt, &fields),
        limits: &ctx.limits,
        read_stats: ctx.read_stats,
    };
    let plan = foldable(&fields);
    let mut scan = Scan {
        measurement: measurement.clone(),
        fields: Vec::new(),
        field_keys: FieldKeys::default(),
        tag_keys: Arc::default(),
        series: Vec::new(),
        start,
        end,
        folded: None,
        shard_starts: Some({
            let mut starts: Vec<i64> = shards.iter().map(|s| s.info.start).collect();
            starts.sort_unstable();
            starts
        }),
        origins: Vec::new(),
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

/// Field names a statement reads: those it selects (all for `*`) and those its
/// condition compares.
fn needed_fields(stmt: &SelectStatement, field_keys: &FieldKeys) -> Vec<String> {
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

/// The series a condition's tag equalities and regular expressions narrow a read to,
/// from the shards' tag indexes.
pub(super) fn tag_selector(
    condition: Option<&Expr>,
    field_keys: &FieldKeys,
    regexes: &Regexes,
) -> TagSelector {
    let is_tag =
        |v: &crate::query::parser::ast::VarRef| v.name != "time" && !field_keys.contains(&v.name);
    match condition {
        Some(Expr::Paren(e)) => tag_selector(Some(e), field_keys, regexes),
        Some(Expr::Binary(b)) if matches!(b.op, BinaryOp::And | BinaryOp::Or) => {
            let sides = vec![
                tag_selector(Some(&b.lhs), field_keys, regexes),
                tag_selector(Some(&b.rhs), field_keys, regexes),
            ];
            if b.op == BinaryOp::And {
                TagSelector::And(sides)
            } else {
                TagSelector::Or(sides)
            }
        }
        Some(Expr::Binary(b)) => match (b.op, &b.lhs, &b.rhs) {
            (BinaryOp::Eq, Expr::VarRef(v), Expr::String(value)) if is_tag(v) => {
                TagSelector::Eq(v.name.clone(), value.clone())
            }
            (BinaryOp::EqRegex, Expr::VarRef(v), Expr::Regex(r)) if is_tag(v) => {
                regexes.get(&r.pattern).map_or(TagSelector::All, |re| {
                    TagSelector::Matches(v.name.clone(), re.clone())
                })
            }
            _ => TagSelector::All,
        },
        _ => TagSelector::All,
    }
}

/// How many rows of each series a statement can need at most, and whether from the end:
/// a raw query's offset + limit (from the end it reads first) when every row read is one
/// it shows; one row for a statement of `last()` calls only (of `first()` calls, from the
/// start) of one field without GROUP BY time. None when all rows are needed.
fn row_cap(stmt: &SelectStatement, fields: &[String]) -> Option<(usize, bool)> {
    // Of one field only: a row is a time at which some field read has a value, so with
    // two the last row may lack the selected one.
    if let (Some(from_end), [_]) = (lone_selector(stmt), fields) {
        return Some((1, from_end));
    }
    if stmt.limit == 0 {
        return None;
    }
    let cap = Some((
        stmt.offset.saturating_add(stmt.limit) as usize,
        descending(stmt),
    ));
    let mut shown: HashSet<&str> = HashSet::new();
    for f in &stmt.fields {
        match &f.expr {
            Expr::Wildcard(_) => return cap,
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
        .then_some(cap)
        .flatten()
}

/// For a statement whose every column is `last(field)` (`first(field)`) and that has no
/// GROUP BY time: true (false), since each series' answer is its last (first) row.
fn lone_selector(stmt: &SelectStatement) -> Option<bool> {
    if stmt.group_by_interval() != Ok(0) {
        return None;
    }
    let mut from_end = None;
    for f in &stmt.fields {
        let Expr::Call(call) = &f.expr else {
            return None;
        };
        let this = match call.name.as_str() {
            "last" => true,
            "first" => false,
            _ => return None,
        };
        if !matches!(call.args.as_slice(), [Expr::VarRef(_)]) || from_end.is_some_and(|e| e != this)
        {
            return None;
        }
        from_end = Some(this);
    }
    from_end
}
