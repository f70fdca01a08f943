//! The `filters` query parameter of `GET /images/json` and `POST /images/prune`, validated and
//! turned into the images service's typed [`images::ImageFilters`].

use berth_proto::images::v1 as images;
use berth_types::Filters;

use crate::error::ApiError;

/// Filter keys `GET /images/json` accepts.
const LIST_FILTERS: &[&str] = &["before", "dangling", "label", "reference", "since", "until"];
/// Filter keys `POST /images/prune` accepts.
const PRUNE_FILTERS: &[&str] = &["dangling", "label", "label!", "until"];

/// `filters` of `GET /images/json` (empty: no filters).
pub fn list(text: &str) -> Result<images::ImageFilters, ApiError> {
    parse(text, LIST_FILTERS, now())
}

/// `filters` of `POST /images/prune` (empty: no filters; the service then prunes only
/// dangling images).
pub fn prune(text: &str) -> Result<images::ImageFilters, ApiError> {
    parse(text, PRUNE_FILTERS, now())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn parse(text: &str, accepted: &[&str], now: i64) -> Result<images::ImageFilters, ApiError> {
    let f = Filters::parse(text)?;
    f.validate(accepted)?;
    let dangling = f.bool_value("dangling")?;
    let until = f
        .values("until")
        .map(|v| parse_until(v, now))
        .collect::<Result<Vec<i64>, _>>()?
        .into_iter()
        .min();
    let strings = |key: &str| f.values(key).map(str::to_owned).collect::<Vec<_>>();
    Ok(images::ImageFilters {
        dangling,
        labels: f.values("label").map(label).collect(),
        labels_not: f.values("label!").map(label).collect(),
        before: strings("before"),
        since: strings("since"),
        until,
        references: strings("reference"),
    })
}

/// `key` or `key=value`.
fn label(v: &str) -> images::LabelFilter {
    let (key, value) = super::split_label(v);
    images::LabelFilter { key, value }
}

fn rfc3339_to_unix(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// `until`: a unix timestamp, an RFC 3339 time, or a Go duration before now (`24h`).
pub(crate) fn parse_until(v: &str, now: i64) -> Result<i64, ApiError> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.bytes().all(|b| b.is_ascii_digit())
        && let Ok(t) = secs.parse::<i64>()
    {
        return Ok(t);
    }
    if let Some(t) = rfc3339_to_unix(v) {
        return Ok(t);
    }
    let bad = || {
        ApiError::invalid(format!(
            "failed to parse value as time or duration: \"{v}\""
        ))
    };
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    // `as` saturates (and maps NaN to 0); the subtraction must not overflow either.
    Ok(now.saturating_sub(secs as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn err(text: &str, accepted: &[&str]) -> String {
        parse(text, accepted, NOW).unwrap_err().message
    }

    #[test]
    fn until_forms() {
        assert_eq!(parse_until("1700000000", NOW).unwrap(), 1_700_000_000);
        assert_eq!(parse_until("1700000000.5", NOW).unwrap(), 1_700_000_000);
        assert_eq!(
            parse_until("2023-11-14T22:13:20Z", NOW).unwrap(),
            1_700_000_000
        );
        assert_eq!(parse_until("1h", NOW).unwrap(), NOW - 3600);
        assert_eq!(parse_until("1.5m", NOW).unwrap(), NOW - 90);
        assert!(parse_until("soon", NOW).is_err());
        assert!(parse_until("1d", NOW).is_err());
        // Huge or odd numbers saturate instead of overflowing.
        let huge = "1".repeat(40);
        assert_eq!(parse_until(&format!("-{huge}h"), NOW).unwrap(), i64::MAX);
        assert_eq!(
            parse_until(&format!("{huge}h"), NOW).unwrap(),
            NOW - i64::MAX
        );
        assert!(parse_until("NaNs", NOW).is_err());
    }

    #[test]
    fn both_encodings_give_the_same_message() {
        let a = parse(
            r#"{"dangling":{"true":true},"label":{"a":true,"b=1":true},"until":{"1h":true,"100":true}}"#,
            LIST_FILTERS,
            NOW,
        )
        .unwrap();
        let b = parse(
            r#"{"dangling":["1"],"label":["a","b=1"],"until":["100","1h"]}"#,
            LIST_FILTERS,
            NOW,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.dangling, Some(true));
        assert_eq!(a.until, Some(100), "the earliest until wins");
        assert_eq!(
            a.labels,
            [
                images::LabelFilter {
                    key: "a".to_owned(),
                    value: None
                },
                images::LabelFilter {
                    key: "b".to_owned(),
                    value: Some("1".to_owned())
                },
            ]
        );
        assert_eq!(
            parse("", LIST_FILTERS, NOW).unwrap(),
            images::ImageFilters::default()
        );
    }

    #[test]
    fn list_keys() {
        let f = parse(
            r#"{"before":["a"],"since":["b"],"reference":["busy*"],"dangling":["false"]}"#,
            LIST_FILTERS,
            NOW,
        )
        .unwrap();
        assert_eq!(
            (f.before, f.since, f.references, f.dangling),
            (
                vec!["a".to_owned()],
                vec!["b".to_owned()],
                vec!["busy*".to_owned()],
                Some(false)
            )
        );
        assert_eq!(
            err(r#"{"label!":["a"]}"#, LIST_FILTERS),
            "invalid filter 'label!'"
        );
    }

    #[test]
    fn prune_keys() {
        let f = parse(r#"{"label!":["a=b=c"]}"#, PRUNE_FILTERS, NOW).unwrap();
        assert_eq!(
            f.labels_not,
            [images::LabelFilter {
                key: "a".to_owned(),
                value: Some("b=c".to_owned())
            }]
        );
        assert_eq!(f.dangling, None, "the service applies prune's default");
        for key in ["before", "since", "reference"] {
            assert_eq!(
                err(&format!(r#"{{"{key}":["x"]}}"#), PRUNE_FILTERS),
                format!("invalid filter '{key}'")
            );
        }
    }

    #[test]
    fn errors_are_dockers() {
        assert_eq!(
            err(r#"{"dangling":["maybe"]}"#, LIST_FILTERS),
            "invalid filter 'dangling=maybe'"
        );
        assert_eq!(
            err(r#"{"dangling":["true","false"]}"#, PRUNE_FILTERS),
            "invalid filter 'dangling': conflicting values"
        );
        assert_eq!(
            err(r#"{"until":["soon"]}"#, PRUNE_FILTERS),
            "failed to parse value as time or duration: \"soon\""
        );
        assert!(err("{bad", LIST_FILTERS).starts_with("invalid filter: "));
        assert_eq!(
            err(r#"{"colour":["x"]}"#, LIST_FILTERS),
            "invalid filter 'colour'"
        );
    }
}
