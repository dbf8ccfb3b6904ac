//! [`Attributes`]: the ordered key/value map of call attributes.
//!
//! Attributes are set by `route` (on [`crate::Decision::connect`]), then by
//! the agent, DTMF or the control API while the call runs. When the same key
//! is set twice the later value wins; the key keeps the position where it
//! first appeared so logs and handoff data stay in a stable order.

/// An ordered string map where a later value for a key replaces the earlier
/// one.
///
/// ```
/// use trunkline_guest_sdk::Attributes;
/// let mut attrs: Attributes = [("lead.qualified", "false"), ("tenant", "acme")]
///     .into_iter()
///     .collect();
/// attrs.insert("lead.qualified", "true");
/// assert_eq!(attrs.get("lead.qualified"), Some("true"));
/// assert_eq!(attrs.keys().collect::<Vec<_>>(), ["lead.qualified", "tenant"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    entries: Vec<(String, String)>,
}

impl Attributes {
    /// An empty map.
    ///
    /// ```
    /// assert!(trunkline_guest_sdk::Attributes::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, returning the value it replaces.
    ///
    /// ```
    /// let mut attrs = trunkline_guest_sdk::Attributes::new();
    /// assert_eq!(attrs.insert("k", "1"), None);
    /// assert_eq!(attrs.insert("k", "2").as_deref(), Some("1"));
    /// ```
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let key = key.into();
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => Some(std::mem::replace(old, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Like [`Attributes::insert`], but `key` matches an existing key
    /// regardless of ASCII case, which then keeps its first spelling. Used
    /// for names that come from SIP headers.
    pub(crate) fn insert_ignore_case(&mut self, key: &str, value: &str) {
        match self
            .entries
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
        {
            Some((_, old)) => *old = value.to_owned(),
            None => self.entries.push((key.to_owned(), value.to_owned())),
        }
    }

    /// The value of `key` (exact match: attribute keys are case-sensitive).
    ///
    /// ```
    /// let attrs: trunkline_guest_sdk::Attributes = [("tenant", "acme")].into_iter().collect();
    /// assert_eq!(attrs.get("tenant"), Some("acme"));
    /// assert_eq!(attrs.get("Tenant"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` read as a boolean: `true`/`yes`/`1` or
    /// `false`/`no`/`0`, ignoring case and surrounding spaces. `None` when
    /// the key is absent or holds anything else, so a typo is never
    /// mistaken for `false`.
    ///
    /// ```
    /// let attrs: trunkline_guest_sdk::Attributes =
    ///     [("a", "TRUE"), ("b", " no "), ("c", "maybe")].into_iter().collect();
    /// assert_eq!(attrs.get_bool("a"), Some(true));
    /// assert_eq!(attrs.get_bool("b"), Some(false));
    /// assert_eq!(attrs.get_bool("c"), None);
    /// ```
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(parse_bool)
    }

    /// True when `key` is set.
    ///
    /// ```
    /// let attrs: trunkline_guest_sdk::Attributes = [("k", "")].into_iter().collect();
    /// assert!(attrs.contains_key("k"));
    /// ```
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Removes `key`, returning its value.
    ///
    /// ```
    /// let mut attrs: trunkline_guest_sdk::Attributes = [("k", "v")].into_iter().collect();
    /// assert_eq!(attrs.remove("k").as_deref(), Some("v"));
    /// assert!(attrs.is_empty());
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(index).1)
    }

    /// The value of `key` as JSON (see [`json_value`]).
    ///
    /// ```
    /// use trunkline_guest_sdk::{Attributes, json};
    /// let attrs: Attributes = [("score", "0.92"), ("account", "000123")].into_iter().collect();
    /// assert_eq!(attrs.json("score"), Some(json!(0.92)));
    /// assert_eq!(attrs.json("account"), Some(json!("000123")));
    /// ```
    pub fn json(&self, key: &str) -> Option<serde_json::Value> {
        self.get(key).map(json_value)
    }

    /// The pairs whose key starts with `prefix`, with the prefix removed,
    /// in order. Handy for families such as `meta.*` or `var.*`.
    ///
    /// ```
    /// let attrs: trunkline_guest_sdk::Attributes =
    ///     [("meta.intent", "billing"), ("tenant", "acme"), ("meta.lang", "en")]
    ///         .into_iter()
    ///         .collect();
    /// let meta: Vec<_> = attrs.with_prefix("meta.").collect();
    /// assert_eq!(meta, [("intent", "billing"), ("lang", "en")]);
    /// ```
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.iter()
            .filter_map(move |(k, v)| k.strip_prefix(prefix).map(|rest| (rest, v)))
    }

    /// The pairs in order.
    ///
    /// ```
    /// let attrs: trunkline_guest_sdk::Attributes = [("a", "1"), ("b", "2")].into_iter().collect();
    /// assert_eq!(attrs.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The keys in order.
    ///
    /// ```
    /// let attrs: trunkline_guest_sdk::Attributes = [("a", "1")].into_iter().collect();
    /// assert_eq!(attrs.keys().next(), Some("a"));
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// The number of keys.
    ///
    /// ```
    /// let attrs: trunkline_guest_sdk::Attributes = [("a", "1"), ("a", "2")].into_iter().collect();
    /// assert_eq!(attrs.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is set.
    ///
    /// ```
    /// assert!(trunkline_guest_sdk::Attributes::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Reads the usual spellings of a boolean flag: `true`/`yes`/`1` or
/// `false`/`no`/`0`, ignoring case and surrounding spaces.
///
/// ```
/// use trunkline_guest_sdk::attributes::parse_bool;
/// assert_eq!(parse_bool(" Yes"), Some(true));
/// assert_eq!(parse_bool("nope"), None);
/// ```
pub fn parse_bool(value: &str) -> Option<bool> {
    let value = value.trim();
    if ["true", "yes", "1"]
        .iter()
        .any(|t| value.eq_ignore_ascii_case(t))
    {
        Some(true)
    } else if ["false", "no", "0"]
        .iter()
        .any(|f| value.eq_ignore_ascii_case(f))
    {
        Some(false)
    } else {
        None
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut attrs = Attributes::new();
        attrs.extend(iter);
        attrs
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for Attributes {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl IntoIterator for Attributes {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a str, &'a str);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// An attribute value read back as the JSON its setter sent.
///
/// Attribute values are text. The control API and the WebSocket agents'
/// `set_attributes` keep a JSON string as its text and write any other JSON
/// value (number, boolean, object, array) as compact JSON text: `0.92`,
/// `true`, `{"a":[1]}`. This reads such text back as that value: text that
/// parses as a JSON number, boolean, object or array *and prints back
/// exactly as it is* is that value; anything else is a string. So `0.92`
/// is a number while `000123` (a JSON number can't start with zeros),
/// `1e3` and `12345678901234567890123` (which would not print back the
/// same) stay strings, and nothing is ever rounded. A string of digits
/// that must stay a string (an account number) belongs in a JSON object
/// attribute such as `five9.metadata`, where its quotes say so.
///
/// ```
/// use trunkline_guest_sdk::{attributes::json_value, json};
/// assert_eq!(json_value("0.92"), json!(0.92));
/// assert_eq!(json_value("true"), json!(true));
/// assert_eq!(json_value(r#"{"k":[1]}"#), json!({"k": [1]}));
/// assert_eq!(json_value("billing"), json!("billing"));
/// assert_eq!(json_value("000123"), json!("000123"));
/// assert_eq!(json_value("1e3"), json!("1e3"));
/// assert_eq!(json_value("12345678901234567890123"), json!("12345678901234567890123"));
/// assert_eq!(json_value(r#""quoted""#), json!(r#""quoted""#));
/// ```
pub fn json_value(text: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if !v.is_string() && !v.is_null() && *text == *v.to_string() => v,
        _ => serde_json::Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_values_win_and_keep_first_position() {
        let attrs: Attributes = [("a", "1"), ("b", "2"), ("a", "3")].into_iter().collect();
        assert_eq!(attrs.iter().collect::<Vec<_>>(), [("a", "3"), ("b", "2")]);
    }

    #[test]
    fn keys_are_case_sensitive_unless_from_headers() {
        let mut attrs = Attributes::new();
        attrs.insert("Key", "1");
        attrs.insert("key", "2");
        assert_eq!(attrs.len(), 2);

        let mut vars = Attributes::new();
        vars.insert_ignore_case("first_name", "Ada");
        vars.insert_ignore_case("FIRST_NAME", "Grace");
        assert_eq!(vars.iter().collect::<Vec<_>>(), [("first_name", "Grace")]);
    }

    #[test]
    fn booleans() {
        let cases = [
            ("true", Some(true)),
            ("True", Some(true)),
            ("yes", Some(true)),
            ("1", Some(true)),
            ("false", Some(false)),
            (" FALSE ", Some(false)),
            ("no", Some(false)),
            ("0", Some(false)),
            ("", None),
            ("truthy", None),
            ("2", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_bool(input), expected, "{input:?}");
        }
    }

    #[test]
    fn remove_and_prefix() {
        let mut attrs: Attributes = [("meta.a", "1"), ("x", "2"), ("meta.b", "3")]
            .into_iter()
            .collect();
        assert_eq!(attrs.with_prefix("meta.").count(), 2);
        assert_eq!(attrs.remove("meta.a").as_deref(), Some("1"));
        assert_eq!(attrs.remove("meta.a"), None);
        assert_eq!(attrs.with_prefix("meta.").collect::<Vec<_>>(), [("b", "3")]);
        let borrowed: Vec<_> = (&attrs).into_iter().collect();
        assert_eq!(borrowed, [("x", "2"), ("meta.b", "3")]);
    }
}
