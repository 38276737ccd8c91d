//! Stripe's form parameters: bracket-notation keys (`line_items[0][price]`, `metadata[key]`,
//! `expand[]`) read from a flat, ordered list of pairs.

use serde_json::{Map, Value};

use super::error::ApiError;

/// Parameters of one request, keys split into their bracket segments, in the order sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    pairs: Vec<(Vec<String>, String)>,
}

fn split_key(key: &str) -> Vec<String> {
    match key.find('[') {
        None => vec![key.to_owned()],
        Some(open) => {
            let mut segments = vec![key[..open].to_owned()];
            let mut rest = &key[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                match stripped.find(']') {
                    Some(close) => {
                        segments.push(stripped[..close].to_owned());
                        rest = &stripped[close + 1..];
                    }
                    None => {
                        segments.push(stripped.to_owned());
                        rest = "";
                    }
                }
            }
            segments
        }
    }
}

impl Params {
    pub(crate) fn from_pairs(pairs: &[(String, String)]) -> Self {
        Self { pairs: pairs.iter().map(|(key, value)| (split_key(key), value.clone())).collect() }
    }

    /// Top-level parameter names, in order of first appearance.
    pub(crate) fn roots(&self) -> Vec<&str> {
        let mut roots: Vec<&str> = Vec::new();
        for (path, _) in &self.pairs {
            if !roots.contains(&path[0].as_str()) {
                roots.push(&path[0]);
            }
        }
        roots
    }

    /// Rejects any top-level parameter the endpoint does not know, as Stripe does.
    pub(crate) fn allow_only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.roots().into_iter().find(|root| !allowed.contains(root)) {
            Some(unknown) => Err(ApiError::unknown_param(unknown)),
            None => Ok(()),
        }
    }

    /// Rejects any name under `prefix` (where `*` stands for any segment, e.g. a list index)
    /// that is not in `allowed`, naming the whole key as Stripe does (`items[0][quantity]`).
    pub(crate) fn allow_only_under(&self, prefix: &[&str], allowed: &[&str]) -> Result<(), ApiError> {
        let under =
            |path: &[String]| path.len() > prefix.len() && path.iter().zip(prefix).all(|(a, b)| *b == "*" || a == b);
        let unknown = self
            .pairs
            .iter()
            .map(|(path, _)| path)
            .find(|path| under(path) && !allowed.contains(&path[prefix.len()].as_str()));
        match unknown {
            Some(path) => {
                let key: Vec<&str> = path[..=prefix.len()].iter().map(String::as_str).collect();
                Err(ApiError::unknown_param(&display_key(&key)))
            }
            None => Ok(()),
        }
    }

    fn matches(path: &[String], prefix: &[&str]) -> bool {
        path.len() >= prefix.len() && path.iter().zip(prefix).all(|(a, b)| a == b)
    }

    pub(crate) fn has(&self, prefix: &[&str]) -> bool {
        self.pairs.iter().any(|(path, _)| Self::matches(path, prefix))
    }

    /// The value of an exact key (the last one when repeated).
    pub(crate) fn get(&self, path: &[&str]) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(p, _)| p.len() == path.len() && Self::matches(p, path))
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn require(&self, path: &[&str]) -> Result<&str, ApiError> {
        match self.get(path) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(ApiError::missing_param(&display_key(path))),
        }
    }

    /// `prefix[key]=value` entries, in order.
    pub(crate) fn map(&self, prefix: &[&str]) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter(|(p, _)| p.len() == prefix.len() + 1 && Self::matches(p, prefix))
            .map(|(p, value)| (p[prefix.len()].clone(), value.clone()))
            .collect()
    }

    /// `prefix[]=v` or `prefix[0]=v` values, in order.
    pub(crate) fn list(&self, prefix: &[&str]) -> Vec<String> {
        let mut values: Vec<String> = Vec::new();
        for (p, value) in &self.pairs {
            if p.len() == prefix.len() + 1 && Self::matches(p, prefix) {
                values.push(value.clone());
            }
        }
        values
    }

    /// `prefix[i][...]` entries grouped by index, each group re-rooted under its index.
    pub(crate) fn groups(&self, prefix: &[&str]) -> Vec<(String, Params)> {
        let mut groups: Vec<(String, Params)> = Vec::new();
        for (p, value) in &self.pairs {
            if p.len() > prefix.len() + 1 && Self::matches(p, prefix) {
                let index = &p[prefix.len()];
                let rest = (p[prefix.len() + 1..].to_vec(), value.clone());
                match groups.iter_mut().find(|(i, _)| i == index) {
                    Some((_, group)) => group.pairs.push(rest),
                    None => groups.push((index.clone(), Params { pairs: vec![rest] })),
                }
            }
        }
        groups
    }

    pub(crate) fn int(&self, path: &[&str]) -> Result<Option<i64>, ApiError> {
        match self.get(path) {
            None | Some("") => Ok(None),
            Some(raw) => raw.parse().map(Some).map_err(|_| ApiError::invalid_integer(&display_key(path), raw)),
        }
    }

    pub(crate) fn bool(&self, path: &[&str]) -> Result<Option<bool>, ApiError> {
        match self.get(path) {
            None | Some("") => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(raw) => Err(ApiError::invalid_boolean(&display_key(path), raw)),
        }
    }

    /// Applies `prefix[key]=value` to a metadata object: an empty value unsets the key, and an
    /// empty `prefix=` clears everything.
    pub(crate) fn apply_metadata(&self, prefix: &[&str], metadata: &mut Value) {
        if self.get(prefix) == Some("") {
            *metadata = Value::Object(Map::new());
        }
        if !metadata.is_object() {
            *metadata = Value::Object(Map::new());
        }
        let object = metadata.as_object_mut().expect("metadata is an object");
        for (key, value) in self.map(prefix) {
            if value.is_empty() {
                object.remove(&key);
            } else {
                object.insert(key, Value::String(value));
            }
        }
    }
}

/// `["line_items", "0", "price"]` -> `line_items[0][price]`.
pub(crate) fn display_key(path: &[&str]) -> String {
    let mut key = path[0].to_owned();
    for segment in &path[1..] {
        key.push('[');
        key.push_str(segment);
        key.push(']');
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Params::from_pairs(&owned)
    }

    #[test]
    fn nested_keys_are_read_by_their_segments() {
        let params = params(&[
            ("line_items[0][price]", "price_a"),
            ("line_items[0][quantity]", "2"),
            ("metadata[account]", "acct_1"),
            ("subscription_data[trial_period_days]", "14"),
        ]);

        assert_eq!(params.get(&["line_items", "0", "price"]), Some("price_a"));
        assert_eq!(params.int(&["line_items", "0", "quantity"]).unwrap(), Some(2));
        assert_eq!(params.map(&["metadata"]), vec![("account".into(), "acct_1".into())]);
        assert_eq!(params.roots(), vec!["line_items", "metadata", "subscription_data"]);
    }

    #[test]
    fn lists_accept_indexed_and_empty_brackets() {
        let params = params(&[("expand[0]", "customer"), ("expand[]", "data.customer")]);

        assert_eq!(params.list(&["expand"]), vec!["customer", "data.customer"]);
    }

    #[test]
    fn groups_split_items_by_index() {
        let params =
            params(&[("items[0][id]", "si_1"), ("items[0][price]", "price_b"), ("items[1][price]", "price_c")]);

        let groups = params.groups(&["items"]);

        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].1.get(&["id"]), Some("si_1"));
        assert_eq!(groups[1].1.get(&["price"]), Some("price_c"));
    }

    #[test]
    fn an_empty_metadata_value_unsets_the_key() {
        let params = params(&[("metadata[old]", ""), ("metadata[new]", "1")]);
        let mut metadata = serde_json::json!({"old": "x", "kept": "y"});

        params.apply_metadata(&["metadata"], &mut metadata);

        assert_eq!(metadata, serde_json::json!({"kept": "y", "new": "1"}));
    }
}
