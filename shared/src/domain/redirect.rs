//! Redirect URLs (Checkout's success/cancel, the portal's return) are accepted only when their
//! origin (scheme, host, port) is in the configured allow-list: an open redirect through
//! Stripe's pages would be a phishing tool.

use http::Uri;

/// The configured origins, e.g. `https://app.example.com,http://localhost:5173`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowList(Vec<String>);

fn origin(raw: &str) -> Option<String> {
    let uri: Uri = raw.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = uri.authority()?;
    // `https://app.example.com@evil.example` names the host evil.example: refuse userinfo.
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    Some(match authority.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

impl AllowList {
    /// Parses a comma-separated list of origins; an entry that is not an origin is an error
    /// naming it.
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|entry| origin(entry).ok_or_else(|| format!("`{entry}` is not an http(s) origin")))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `url` is absolute, http(s), and of an allowed origin.
    pub fn allows(&self, url: &str) -> bool {
        url.len() <= 2048 && origin(url).is_some_and(|o| self.0.contains(&o))
    }
}

/// Where Stripe may send the customer back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirects {
    pub allowed: AllowList,
    pub success_url: String,
    pub cancel_url: String,
    pub return_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> AllowList {
        AllowList::parse("https://app.example.com, http://localhost:5173").unwrap()
    }

    #[test]
    fn allowed_origins_pass_with_any_path() {
        assert!(list().allows("https://app.example.com/billing/done?session={CHECKOUT_SESSION_ID}"));
        assert!(list().allows("https://APP.example.com"));
        assert!(list().allows("http://localhost:5173/x"));
    }

    #[test]
    fn foreign_or_tricky_origins_are_refused() {
        for url in [
            "https://evil.example/",
            "https://app.example.com.evil.example/",
            "https://app.example.com@evil.example/",
            "http://app.example.com/",
            "https://app.example.com:8443/",
            "javascript:alert(1)",
            "/relative/path",
            "",
        ] {
            assert!(!list().allows(url), "{url}");
        }
    }

    #[test]
    fn bad_configuration_names_the_entry() {
        assert_eq!(AllowList::parse("https://ok.example,ftp://x").unwrap_err(), "`ftp://x` is not an http(s) origin");
    }
}
