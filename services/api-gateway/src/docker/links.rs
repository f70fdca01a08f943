//! Legacy links (`--link name:alias`, `HostConfig.Links`): parsed as dockerd's `ParseLink`
//! does into `name:alias` (the runtime resolves the name to the linked container's), and
//! shown by inspect as dockerd stores them, `/name:/me/alias`.

use crate::error::ApiError;

/// `name[:alias]` entries (a leading slash on the name is dropped; no alias: the name) as
/// `name:alias`.
pub fn parse(links: Vec<String>) -> Result<Vec<String>, ApiError> {
    links
        .into_iter()
        .map(|l| {
            let parts: Vec<&str> = l.split(':').collect();
            let (name, alias) = match parts.as_slice() {
                [name] => (*name, *name),
                [name, alias] => (*name, *alias),
                _ => return Err(ApiError::invalid(format!("bad format for links: {l}"))),
            };
            let name = name.trim_start_matches('/');
            let alias = alias.trim_start_matches('/');
            if name.is_empty() || alias.is_empty() {
                return Err(ApiError::invalid(format!("bad format for links: {l}")));
            }
            Ok(format!("{name}:{alias}"))
        })
        .collect()
}

/// Inspect's `HostConfig.Links` of the container named `me` (without the slash).
pub fn inspect(links: &[String], me: &str) -> Vec<String> {
    links
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(name, alias)| format!("/{name}:/{me}/{alias}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn links_parse_and_show_as_dockerd_does() {
        let parsed = parse(s(&["db:alias", "cache", "/web:www"])).unwrap();
        assert_eq!(parsed, s(&["db:alias", "cache:cache", "web:www"]));
        assert_eq!(
            inspect(&parsed, "me"),
            s(&["/db:/me/alias", "/cache:/me/cache", "/web:/me/www"])
        );
        assert!(parse(s(&["a:b:c"])).is_err());
        assert!(parse(s(&[":b"])).is_err());
    }
}
