//! Twilio `X-Twilio-Signature` webhook signing and validation (HMAC-SHA1).
//!
//! Mirrors Twilio's documented algorithm and its official helper libraries
//! (twilio-python `twilio/request_validator.py`, twilio-node
//! `src/webhooks/webhooks.ts`):
//!
//! 1. start with the full URL as requested (scheme, host, optional port, path, query);
//! 2. append every form parameter as `name` + `value` with no separators, names
//!    sorted bytewise; a repeated name contributes each distinct value, sorted;
//! 3. the signature is `base64(HMAC-SHA1(auth_token, string))`.
//!
//! Because proxies and load balancers rarely preserve the port Twilio used,
//! [`validate`] accepts the URL as given, with any port removed, and with the
//! scheme's default port (`:443` / `:80`) added, each also with `'` in the
//! query percent-encoded as `%27` (twilio-node's WHATWG URL re-encoding) or
//! decoded back. [`sign`] signs the URL exactly as given and is what our
//! simulated carrier uses to send signed webhooks.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::{Choice, ConstantTimeEq};

type HmacSha1 = Hmac<Sha1>;

/// Computes the signature Twilio would send for `url` and form `params`.
///
/// Source: Twilio webhook security docs / `RequestValidator.compute_signature`.
/// `url` is the full request URL exactly as Twilio requested it (e.g.
/// `https://host/path?query`); it is signed verbatim, with no port or
/// encoding variants. `params` are the decoded `application/x-www-form-urlencoded`
/// body fields as `(name, value)` pairs in any order; repeated names are allowed.
/// Returns the base64 value of the `X-Twilio-Signature` header.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    // HMAC accepts keys of any length, so this never fails in practice; an empty
    // string can never match in `validate`, which rejects empty signatures.
    let Ok(mut mac) = HmacSha1::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(url.as_bytes());
    let mut grouped: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, value) in params {
        grouped.entry(name).or_default().insert(value);
    }
    for (name, values) in &grouped {
        for value in values {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// True when `signature` is valid for `url`+`params` under any accepted URL variant. Empty or missing signature → false.
///
/// Source: twilio-python `RequestValidator.validate` and twilio-node
/// `validateRequest`. `url` is the full request URL as seen by our server
/// (scheme, host, optional port, path, query; userinfo allowed), `params` the
/// decoded form fields as `(name, value)` pairs, and `signature` the raw
/// `X-Twilio-Signature` header value (pass `""` when it is missing). Accepted
/// variants: the URL as given, without its port, with the default port added
/// when none is present, and each of those with `'` ↔ `%27` in the query.
/// Comparison is constant time.
pub fn validate(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    if signature.is_empty() {
        return false;
    }
    let matched = url_variants(url).iter().fold(Choice::from(0), |acc, candidate| {
        acc | sign(auth_token, candidate, params).as_bytes().ct_eq(signature.as_bytes())
    });
    matched.into()
}

/// The `bodySHA256` query value Twilio puts on webhooks with a JSON body:
/// lowercase hex SHA-256 of the raw body bytes.
///
/// Source: twilio-python `RequestValidator.compute_hash`; providers.md §1.13 vector 7.
pub fn body_sha256(body: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect()
}

/// Validates a webhook whose body is not a form (JSON): the URL's `bodySHA256` query
/// parameter must equal [`body_sha256`] of `body`, and `signature` must be valid for
/// the URL alone (no parameters), under the same URL variants as [`validate`].
/// False when the URL has no `bodySHA256`, the hash differs, or the signature is wrong.
///
/// Source: twilio-python `RequestValidator.validate` (the `bodySHA256` branch),
/// twilio-node `validateRequestWithBody`; providers.md §1.13 vectors 8–10.
pub fn validate_with_body(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    let Some(query) = url.split_once('?').map(|(_, q)| q) else { return false };
    let Some(given) = query.split('&').find_map(|kv| kv.strip_prefix("bodySHA256=")) else { return false };
    let hash_ok: bool = given.as_bytes().ct_eq(body_sha256(body).as_bytes()).into();
    hash_ok && validate(auth_token, url, &[], signature)
}

/// A URL split around its port: `prefix` is `scheme://[userinfo@]host`,
/// `port` the text after the host's `:` (if any), `rest` the path onwards.
struct UrlParts<'a> {
    scheme: &'a str,
    prefix: &'a str,
    port: Option<&'a str>,
    rest: &'a str,
}

fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let scheme_end = url.find("://")?;
    let authority_start = scheme_end + 3;
    let authority_len = url[authority_start..].find(['/', '?', '#']).unwrap_or(url.len() - authority_start);
    let authority_end = authority_start + authority_len;
    let authority = &url[authority_start..authority_end];
    // Userinfo ends at the last '@' (WHATWG); the host may be a bracketed IPv6 literal.
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host_port = &authority[host_start..];
    let colon = if host_port.starts_with('[') {
        host_port.find(']').and_then(|close| host_port[close..].find(':').map(|c| close + c))
    } else {
        host_port.rfind(':')
    };
    let (prefix_end, port) = match colon {
        Some(c) => {
            let abs = authority_start + host_start + c;
            (abs, Some(&url[abs + 1..authority_end]))
        }
        None => (authority_end, None),
    };
    Some(UrlParts { scheme: &url[..scheme_end], prefix: &url[..prefix_end], port, rest: &url[authority_end..] })
}

/// All URL spellings `validate` accepts, deduplicated, the original first.
fn url_variants(url: &str) -> Vec<String> {
    let mut bases = vec![url.to_owned()];
    if let Some(parts) = split_url(url) {
        match parts.port {
            Some(_) => bases.push(format!("{}{}", parts.prefix, parts.rest)),
            None => {
                let default = if parts.scheme.eq_ignore_ascii_case("https") { 443 } else { 80 };
                bases.push(format!("{}:{default}{}", parts.prefix, parts.rest));
            }
        }
    }
    let mut out: Vec<String> = Vec::with_capacity(bases.len() * 3);
    for base in bases {
        for candidate in [replace_in_query(&base, "'", "%27"), replace_in_query(&base, "%27", "'"), base] {
            if !out.contains(&candidate) {
                out.push(candidate);
            }
        }
    }
    out
}

/// Replaces `from` with `to` only in the query (after the first `?`).
fn replace_in_query(url: &str, from: &str, to: &str) -> String {
    match url.split_once('?') {
        Some((head, query)) => format!("{head}?{}", query.replace(from, to)),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "12345";
    const BASE_URI: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const BASE_SIG: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn base_params() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ])
    }

    fn valid(url: &str, params: &[(String, String)], sig: &str) -> bool {
        validate(TOKEN, url, params, sig)
    }

    #[test]
    fn base_vector_signs_and_validates() {
        let p = base_params();
        assert_eq!(sign(TOKEN, BASE_URI, &p), BASE_SIG);
        let s = "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDE\
                 Caller+14158675309Digits1234From+14158675309To+18005551212";
        assert_eq!(sign(TOKEN, s, &[]), BASE_SIG);
        assert!(valid(BASE_URI, &p, BASE_SIG));
    }

    #[test]
    fn port_variants() {
        let p = base_params();
        let with_port = "https://mycompany.com:1234/myapp.php?foo=1&bar=2";
        assert!(valid(with_port, &p, BASE_SIG));
        assert!(valid(BASE_URI, &p, "kvajT1Ptam85bY51eRf/AJRuM3w="));
        let http = "http://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(valid(http, &p, "0ZXoZLH/DfblKGATFgpif+LLRf4="));
        let http_port = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
        assert!(valid(http_port, &p, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="));
    }

    #[test]
    fn repeated_params_are_deduplicated_and_sorted() {
        let p = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert!(valid(BASE_URI, &p, "IK+Dwps556ElfBT0I3Rgjkr1wJU="));
        let key = "MessagingBinding.Address";
        let sig = "83O6e2vORAoJHUNzJjDWN1jz+BA=";
        let a = pairs(&[(key, "+1325xxxxxxx"), (key, "+1415xxxxxxx")]);
        let b = pairs(&[(key, "+1415xxxxxxx"), (key, "+1325xxxxxxx")]);
        assert!(valid(BASE_URI, &a, sig));
        assert!(valid(BASE_URI, &b, sig));
    }

    #[test]
    fn userinfo_urls() {
        let p = base_params();
        let creds = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
        assert!(valid(creds, &p, "CukzLTc1tT5dXEDIHm/tKBanW10="));
        assert!(valid(creds, &p, "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI="));
        let creds_port = "https://user:pass@mycompany.com:8443/myapp.php?foo=1&bar=2";
        assert!(valid(creds_port, &p, "CukzLTc1tT5dXEDIHm/tKBanW10="));
        let user = "https://user@mycompany.com/myapp.php?foo=1&bar=2";
        assert!(valid(user, &p, "2YRLlVAflCqxaNicjMpJcSTgzSs="));
    }

    #[test]
    fn apostrophe_in_query() {
        let p = base_params();
        let raw = "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It's+amazing";
        assert!(valid(raw, &p, "TfZzewPq8wqrGlMfyAud8+/IvJ0="));
        assert!(valid(raw, &p, "dsq4Ehbj6cs+KdTkpF5sSSplOWw="));
        let encoded = "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It%27s+amazing";
        assert!(valid(encoded, &p, "dsq4Ehbj6cs+KdTkpF5sSSplOWw="));
    }

    /// providers.md §1.13 vectors 7–10 (JSON bodies signed through `bodySHA256`).
    #[test]
    fn json_body_vectors() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        assert_eq!(body_sha256(body), hash);
        assert_eq!(body_sha256(b"{}"), "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        let url = format!("https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256={hash}");
        assert!(validate_with_body("12345", &url, body, "a9nBmqA0ju/hNViExpshrM61xv4="));
        let empty = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        assert!(validate_with_body("12345", empty, b"{}", "Ldidvp12m26NI7eqEvxnEpkd9Hc="), "vector 9 (:443 form)");
        let only = format!("https://mycompany.com/myapp.php?bodySHA256={hash}");
        assert!(validate_with_body("12345", &only, body, "y77kIzt2vzLz71DgmJGsen2scGs="));
        // Negative cases: a wrong hash, a truncated hash, no hash in the URL, a changed body.
        assert!(!validate_with_body("12345", &url.replace("6620", "6621"), body, "a9nBmqA0ju/hNViExpshrM61xv4="));
        assert!(!validate_with_body("12345", &url[..url.len() - 1], body, "a9nBmqA0ju/hNViExpshrM61xv4="));
        assert!(!validate_with_body(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            body,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!validate_with_body("12345", &url, br#"{"property": "other"}"#, "a9nBmqA0ju/hNViExpshrM61xv4="));
    }

    #[test]
    fn rejects_bad_signatures() {
        let p = base_params();
        assert!(!valid(BASE_URI, &p, "WRONG_SIGNATURE"));
        assert!(!valid(BASE_URI, &p, ""));
        let extra = format!("{BASE_URI}&somethingUnexpected=true");
        assert!(!valid(&extra, &p, BASE_SIG));
        let mut changed = base_params();
        changed[1].1 = "4321".to_owned();
        assert!(!valid(BASE_URI, &changed, BASE_SIG));
    }

    #[test]
    fn default_port_round_trip() {
        let token = "s3cr3t";
        let plain = "https://example.com/path?test=param";
        let ported = "https://example.com:443/path?test=param";
        assert_eq!(sign(token, plain, &[]), "loLgTitFAoWx57yy5oEU4Hlddzw=");
        assert!(validate(token, ported, &[], &sign(token, plain, &[])));
        assert!(validate(token, plain, &[], &sign(token, ported, &[])));
        let other = "https://example.com/path?test=param2";
        assert!(!validate(token, other, &[], &sign(token, plain, &[])));
    }

    #[test]
    fn odd_urls_do_not_panic() {
        for url in [
            "",
            "://",
            "https://",
            "https://[::1]:8080/x?y='",
            "https://[::1/x",
            "https://h:/p",
            "weird@@:?'%27",
            "https://é:ü@ñ:1/€?'",
        ] {
            let sig = sign("k", url, &[]);
            assert!(validate("k", url, &[], &sig));
        }
        assert_eq!(url_variants("https://[::1]:8080/x"), ["https://[::1]:8080/x", "https://[::1]/x"]);
        assert_eq!(url_variants("http://[::1]/x"), ["http://[::1]/x", "http://[::1]:80/x"]);
    }
}
