//! Following AWS pagination tokens safely, for every listing that pages (Tagging API, Resource
//! Explorer, Config, Organizations).

/// The next page's token: None when the listing is done (no token, or an empty one); an error
/// for a token equal to the one just sent, which would page forever.
pub(crate) fn next_token(
    sent: Option<&str>,
    got: Option<&str>,
    operation: &str,
    place: &str,
) -> Result<Option<String>, String> {
    match got {
        Some(t) if !t.is_empty() && sent == Some(t) => Err(format!(
            "{operation} in {place} returned the same NextToken twice; the listing may be \
             incomplete"
        )),
        Some(t) if !t.is_empty() => Ok(Some(t.to_string())),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::next_token;

    #[test]
    fn a_repeated_token_stops_the_listing_and_an_empty_one_ends_it() {
        assert_eq!(next_token(None, Some("a"), "Op", "r"), Ok(Some("a".into())));
        assert_eq!(
            next_token(Some("a"), Some("b"), "Op", "r"),
            Ok(Some("b".into()))
        );
        assert_eq!(next_token(Some("a"), Some(""), "Op", "r"), Ok(None));
        assert_eq!(next_token(Some("a"), None, "Op", "r"), Ok(None));
        let why = next_token(Some("a"), Some("a"), "GetResources", "us-east-1").unwrap_err();
        assert!(why.contains("GetResources in us-east-1 returned the same NextToken twice"));
    }
}
