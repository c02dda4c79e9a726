//! Typed InfluxQL syntax tree.
//!
//! Conventions: durations are `i64` nanoseconds; `limit`/`offset` style
//! fields use 0 for "not given" (as InfluxDB does); optional names use
//! `Option<String>` and an empty quoted name (`""`) in a database or
//! retention-policy position is normalised to `None`.

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Statement {
    Select(Box<SelectStatement>),
    Delete(DeleteStatement),
    ShowDatabases,
    ShowMeasurements(ShowMeasurementsStatement),
    ShowSeries(ShowSeriesStatement),
    ShowTagKeys(ShowTagKeysStatement),
    ShowTagValues(ShowTagValuesStatement),
    ShowFieldKeys(ShowFieldKeysStatement),
    /// SHOW {SERIES|MEASUREMENT|TAG KEY|TAG VALUES|FIELD KEY} [EXACT] CARDINALITY ...
    ShowCardinality(ShowCardinalityStatement),
    ShowRetentionPolicies {
        database: Option<String>,
    },
    ShowShards,
    ShowShardGroups,
    ShowUsers,
    ShowQueries,
    ShowContinuousQueries,
    ShowSubscriptions,
    ShowGrantsForUser {
        name: String,
    },
    ShowDiagnostics {
        module: Option<String>,
    },
    ShowStats {
        module: Option<String>,
    },
    CreateDatabase(CreateDatabaseStatement),
    DropDatabase {
        name: String,
    },
    CreateRetentionPolicy(CreateRetentionPolicyStatement),
    AlterRetentionPolicy(AlterRetentionPolicyStatement),
    DropRetentionPolicy {
        name: String,
        database: String,
    },
    DropMeasurement {
        name: String,
    },
    DropSeries(DropSeriesStatement),
    DropShard {
        id: u64,
    },
    CreateUser {
        name: String,
        password: String,
        admin: bool,
    },
    DropUser {
        name: String,
    },
    SetPassword {
        name: String,
        password: String,
    },
    Grant {
        privilege: Privilege,
        database: String,
        user: String,
    },
    GrantAdmin {
        user: String,
    },
    Revoke {
        privilege: Privilege,
        database: String,
        user: String,
    },
    RevokeAdmin {
        user: String,
    },
    KillQuery {
        id: u64,
        host: Option<String>,
    },
    Explain {
        analyze: bool,
        statement: Box<SelectStatement>,
    },
    CreateContinuousQuery(CreateContinuousQueryStatement),
    DropContinuousQuery {
        name: String,
        database: String,
    },
    CreateSubscription(CreateSubscriptionStatement),
    DropSubscription {
        name: String,
        database: String,
        retention_policy: String,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct SelectStatement {
    pub fields: Vec<Field>,
    pub target: Option<Target>,
    pub sources: Vec<Source>,
    pub condition: Option<Expr>,
    pub dimensions: Vec<Dimension>,
    pub fill: Option<Fill>,
    pub order_by: Vec<SortField>,
    pub limit: u64,
    pub offset: u64,
    pub slimit: u64,
    pub soffset: u64,
    /// Time zone name from `tz('...')` (not validated against a tz database).
    pub location: Option<String>,
}

impl SelectStatement {
    /// The `GROUP BY time(...)` interval in nanoseconds (0 when absent), with
    /// InfluxDB's error texts for a malformed time dimension.
    pub(crate) fn group_by_interval(&self) -> Result<i64, &'static str> {
        for d in &self.dimensions {
            if let Expr::Call(c) = &d.expr {
                if c.name == "time" {
                    if c.args.is_empty() || c.args.len() > 2 {
                        return Err("time dimension expected 1 or 2 arguments");
                    }
                    return match c.args[0] {
                        // 1.x takes these for no time grouping (and divides by zero
                        // with an offset); a statement meaning that would not say it.
                        Expr::Duration(d) if d <= 0 => {
                            Err("time dimension must have a positive duration")
                        }
                        Expr::Duration(d) => Ok(d),
                        _ => Err("time dimension must have duration argument"),
                    };
                }
            }
        }
        Ok(0)
    }

    #[cfg(test)]
    /// `GROUP BY time(interval[, offset])`: the dimension's arguments, if present.
    pub(crate) fn group_by_time(&self) -> Option<&[Expr]> {
        self.dimensions.iter().find_map(|d| match &d.expr {
            Expr::Call(c) if c.name == "time" => Some(c.args.as_slice()),
            _ => None,
        })
    }
}

/// A SELECT field: expression plus optional alias.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub expr: Expr,
    pub alias: Option<String>,
}

/// `INTO` target. `name == ""` is the `:MEASUREMENT` back-reference.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    pub database: Option<String>,
    pub retention_policy: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    Measurement(Measurement),
    Subquery(Box<SelectStatement>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measurement {
    pub database: Option<String>,
    pub retention_policy: Option<String>,
    pub name: MeasurementName,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MeasurementName {
    Name(String),
    Regex(Regex),
}

/// A regular expression literal, kept as source text (`/` unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Regex {
    pub pattern: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dimension {
    pub expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fill {
    Null,
    None,
    Previous,
    Linear,
    Integer(i64),
    Number(f64),
}

/// `ORDER BY` entry; `name` is empty for `ORDER BY ASC|DESC`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SortField {
    pub name: String,
    pub ascending: bool,
}

/// Cast on a variable reference: `x::float`, `x::tag`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataType {
    Float,
    Integer,
    Unsigned,
    String,
    Boolean,
    /// `::field`
    AnyField,
    /// `::tag`
    Tag,
}

impl DataType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DataType::Float => "float",
            DataType::Integer => "integer",
            DataType::Unsigned => "unsigned",
            DataType::String => "string",
            DataType::Boolean => "boolean",
            DataType::AnyField => "field",
            DataType::Tag => "tag",
        }
    }
}

/// `*`, `*::field`, `*::tag`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WildcardType {
    All,
    Field,
    Tag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    BitAnd,
    BitOr,
    BitXor,
    And,
    Or,
    Eq,
    Neq,
    EqRegex,
    NeqRegex,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl BinaryOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::BitAnd => "&",
            BinaryOp::BitOr => "|",
            BinaryOp::BitXor => "^",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::Eq => "=",
            BinaryOp::Neq => "!=",
            BinaryOp::EqRegex => "=~",
            BinaryOp::NeqRegex => "!~",
            BinaryOp::Lt => "<",
            BinaryOp::Lte => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Gte => ">=",
        }
    }

    /// InfluxQL precedence: OR 1, AND 2, comparisons 3, `+ - | ^` 4, `* / % &` 5.
    pub(crate) fn precedence(self) -> u8 {
        use BinaryOp::*;
        match self {
            Or => 1,
            And => 2,
            Eq | Neq | EqRegex | NeqRegex | Lt | Lte | Gt | Gte => 3,
            Add | Sub | BitOr | BitXor => 4,
            Mul | Div | Mod | BitAnd => 5,
        }
    }

    pub(crate) fn is_comparison_or_logical(self) -> bool {
        self.precedence() <= 3
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BinaryExpr {
    pub op: BinaryOp,
    pub lhs: Expr,
    pub rhs: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    /// Lower-cased function name.
    pub name: String,
    pub args: Vec<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VarRef {
    /// Segments joined with `.` (as InfluxDB does).
    pub name: String,
    pub data_type: Option<DataType>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    VarRef(VarRef),
    Call(Call),
    Binary(Box<BinaryExpr>),
    Paren(Box<Expr>),
    Integer(i64),
    /// Integer literal too large for i64.
    Unsigned(u64),
    Number(f64),
    String(String),
    Boolean(bool),
    /// Nanoseconds.
    Duration(i64),
    Regex(Regex),
    Wildcard(WildcardType),
    /// `DISTINCT field` (the non-call form).
    Distinct(String),
    /// `$name`, to be substituted from the request's `params`.
    BoundParam(String),
}

impl Expr {
    pub(crate) fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Binary(Box::new(BinaryExpr { op, lhs, rhs }))
    }
    pub(crate) fn var(name: &str) -> Expr {
        Expr::VarRef(VarRef {
            name: name.to_string(),
            data_type: None,
        })
    }
    #[cfg(test)]
    pub(crate) fn call(name: &str, args: Vec<Expr>) -> Expr {
        Expr::Call(Call {
            name: name.to_string(),
            args,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeleteStatement {
    pub sources: Vec<Source>,
    pub condition: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DropSeriesStatement {
    pub sources: Vec<Source>,
    pub condition: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ShowMeasurementsStatement {
    pub database: Option<String>,
    pub wildcard_database: bool,
    pub retention_policy: Option<String>,
    pub wildcard_retention_policy: bool,
    /// `WITH MEASUREMENT = name` / `WITH MEASUREMENT =~ /regex/`
    pub source: Option<Measurement>,
    pub condition: Option<Expr>,
    pub order_by: Vec<SortField>,
    pub limit: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ShowSeriesStatement {
    pub database: Option<String>,
    pub sources: Vec<Source>,
    pub condition: Option<Expr>,
    pub order_by: Vec<SortField>,
    pub limit: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ShowTagKeysStatement {
    pub database: Option<String>,
    pub sources: Vec<Source>,
    pub condition: Option<Expr>,
    pub order_by: Vec<SortField>,
    pub limit: u64,
    pub offset: u64,
    pub slimit: u64,
    pub soffset: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ShowTagValuesStatement {
    pub database: Option<String>,
    pub sources: Vec<Source>,
    pub tag_key: TagKeyPredicate,
    pub condition: Option<Expr>,
    pub order_by: Vec<SortField>,
    pub limit: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ShowFieldKeysStatement {
    pub database: Option<String>,
    pub sources: Vec<Source>,
    pub order_by: Vec<SortField>,
    pub limit: u64,
    pub offset: u64,
}

/// `WITH KEY ...` clause.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TagKeyPredicate {
    Eq(String),
    Neq(String),
    EqRegex(Regex),
    NeqRegex(Regex),
    In(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CardinalityKind {
    Series,
    Measurement,
    TagKey,
    TagValues,
    FieldKey,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ShowCardinalityStatement {
    pub kind: CardinalityKind,
    pub exact: bool,
    pub database: Option<String>,
    pub sources: Vec<Source>,
    /// Only for `TagValues` (required there).
    pub tag_key: Option<TagKeyPredicate>,
    pub condition: Option<Expr>,
    pub dimensions: Vec<Dimension>,
    pub limit: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct CreateDatabaseStatement {
    pub name: String,
    /// True when a `WITH ...` clause was given.
    pub retention_policy_create: bool,
    pub duration: Option<i64>,
    pub replication: Option<u32>,
    pub shard_duration: Option<i64>,
    pub future_limit: Option<i64>,
    pub past_limit: Option<i64>,
    pub rp_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct CreateRetentionPolicyStatement {
    pub name: String,
    pub database: String,
    /// 0 = INF
    pub duration: i64,
    pub replication: u32,
    pub shard_duration: Option<i64>,
    pub default: bool,
    pub future_limit: Option<i64>,
    pub past_limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct AlterRetentionPolicyStatement {
    pub name: String,
    pub database: String,
    pub duration: Option<i64>,
    pub replication: Option<u32>,
    pub shard_duration: Option<i64>,
    pub default: bool,
    pub future_limit: Option<i64>,
    pub past_limit: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Privilege {
    Read,
    Write,
    All,
}

impl Privilege {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Privilege::Read => "READ",
            Privilege::Write => "WRITE",
            Privilege::All => "ALL PRIVILEGES",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CreateContinuousQueryStatement {
    pub name: String,
    pub database: String,
    pub resample_every: Option<i64>,
    pub resample_for: Option<i64>,
    pub source: Box<SelectStatement>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CreateSubscriptionStatement {
    pub name: String,
    pub database: String,
    pub retention_policy: String,
    /// "ALL" or "ANY"
    pub mode: String,
    pub destinations: Vec<String>,
}
