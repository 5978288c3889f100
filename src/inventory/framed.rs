//! Framing a Tagging API file (`{"ResourceTagMappingList": [...]}` or an array of such pages)
//! so that each mapping can be parsed from a byte slice.
//!
//! serde_json reading through `io::Read` takes a byte at a time and was most of the time a
//! million-resource check spent; parsing from slices is several times faster, and reading the
//! whole file into memory would cost its size. So the file is scanned once, tracking only
//! strings, nesting and object keys: each element of a page's `ResourceTagMappingList` is
//! handed over as its own slice, and everything else is kept as a *skeleton* (the document with
//! each mapping replaced by a placeholder) for the caller to validate with the same visitors as
//! the streaming reader. Anything this scanner does not expect (an escaped key, unbalanced
//! brackets) makes it give up: the caller then reads the file the slow way, which also words
//! the error.

use std::io::BufRead;

/// What stands in for each mapping in the skeleton: a mapping that deserializes.
pub(crate) const PLACEHOLDER: &[u8] = br#"{"ResourceARN":""}"#;
const LIST_KEY: &[u8] = b"ResourceTagMappingList";

struct Frame {
    object: bool,
    /// In an object: the next string is a key.
    expect_key: bool,
    /// In an object: the last key was `ResourceTagMappingList`.
    list_key: bool,
    /// An array that is a page's mapping list.
    mappings: bool,
}

/// Scans `reader`; calls `mapping` with each mapping's bytes, in order. Returns the skeleton, or
/// `None` when the scanner gave up (or `mapping` refused one: it returns false).
pub(crate) fn scan<R: BufRead>(
    mut reader: R,
    many: bool,
    mut mapping: impl FnMut(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    // Pages are the root object, or the root array's elements.
    let page_depth = if many { 2 } else { 1 };
    let mut stack: Vec<Frame> = Vec::with_capacity(8);
    let mut skeleton = Vec::new();
    let mut element: Vec<u8> = Vec::with_capacity(4096);
    // Depth inside the mapping being captured (0: not capturing).
    let mut inner = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut key: Option<Vec<u8>> = None;
    loop {
        let chunk = reader.fill_buf().ok()?;
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len();
        let mut i = 0;
        while i < len {
            let b = chunk[i];
            if inner > 0 {
                // Inside a mapping: copy bytes through, jumping (memchr) from one quote, brace
                // or backslash to the next. Only braces are counted: a mapping is an object,
                // and brackets inside it balance in any document serde accepts afterwards.
                let start = i;
                while i < len {
                    if escaped {
                        escaped = false;
                        i += 1;
                        continue;
                    }
                    let rest = &chunk[i..];
                    let found = if in_string {
                        memchr::memchr2(b'"', b'\\', rest)
                    } else {
                        memchr::memchr3(b'"', b'{', b'}', rest)
                    };
                    let Some(at) = found else {
                        i = len;
                        break;
                    };
                    i += at + 1;
                    match (in_string, rest[at]) {
                        (true, b'\\') => escaped = true,
                        (true, _) => in_string = false,
                        (false, b'"') => in_string = true,
                        (false, b'{') => inner += 1,
                        _ => {
                            inner -= 1;
                            if inner == 0 {
                                break;
                            }
                        }
                    }
                }
                element.extend_from_slice(&chunk[start..i]);
                if inner == 0 {
                    if !mapping(&element) {
                        return None;
                    }
                    element.clear();
                    skeleton.extend_from_slice(PLACEHOLDER);
                }
                continue;
            }
            i += 1;
            if in_string {
                skeleton.push(b);
                if let Some(k) = key.as_mut() {
                    if escaped || b == b'\\' {
                        // An escaped key might spell the list's name: let serde decide.
                        return None;
                    }
                    if b == b'"' {
                        in_string = false;
                        let is_list = k.as_slice() == LIST_KEY;
                        key = None;
                        let frame = stack.last_mut()?;
                        frame.list_key = is_list;
                        frame.expect_key = false;
                    } else {
                        k.push(b);
                    }
                    continue;
                }
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => {
                    in_string = true;
                    if stack.last().is_some_and(|f| f.object && f.expect_key) {
                        key = Some(Vec::new());
                    }
                    skeleton.push(b);
                }
                b'{' if stack.last().is_some_and(|f| f.mappings) => {
                    inner = 1;
                    element.push(b);
                }
                b'{' | b'[' => {
                    let mappings = b == b'['
                        && stack.len() == page_depth
                        && stack.last().is_some_and(|f| f.object && f.list_key);
                    stack.push(Frame {
                        object: b == b'{',
                        expect_key: b == b'{',
                        list_key: false,
                        mappings,
                    });
                    skeleton.push(b);
                }
                b'}' | b']' => {
                    let frame = stack.pop()?;
                    if frame.object != (b == b'}') {
                        return None;
                    }
                    skeleton.push(b);
                }
                b',' => {
                    if let Some(f) = stack.last_mut()
                        && f.object
                    {
                        f.expect_key = true;
                        f.list_key = false;
                    }
                    skeleton.push(b);
                }
                _ => skeleton.push(b),
            }
        }
        reader.consume(len);
    }
    (stack.is_empty() && inner == 0 && !in_string).then_some(skeleton)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str, many: bool) -> Option<(Vec<String>, String)> {
        let mut seen = Vec::new();
        let skeleton = scan(text.as_bytes(), many, |m| {
            seen.push(String::from_utf8(m.to_vec()).unwrap());
            true
        })?;
        Some((seen, String::from_utf8(skeleton).unwrap()))
    }

    #[test]
    fn mappings_of_a_page_and_of_pages_are_framed_and_the_rest_kept() {
        let page = r#"{"PaginationToken": "a{\"]", "ResourceTagMappingList": [{"ResourceARN": "arn:x", "Tags": [{"Key": "a}", "Value": "[\\"}]}, {"ResourceARN":"arn:y"}], "Other": {"ResourceTagMappingList": [{"ResourceARN":"no"}]}}"#;
        let (seen, skeleton) = frame(page, false).unwrap();
        assert_eq!(
            seen,
            vec![
                r#"{"ResourceARN": "arn:x", "Tags": [{"Key": "a}", "Value": "[\\"}]}"#,
                r#"{"ResourceARN":"arn:y"}"#
            ]
        );
        assert!(skeleton.contains(r#"[{"ResourceARN":""}, {"ResourceARN":""}]"#));
        // A list under another key is not a page's list: it stays in the skeleton.
        assert!(
            skeleton.contains(r#""Other": {"ResourceTagMappingList": [{"ResourceARN":"no"}]}"#)
        );
        let pages = format!("[{page}, {page}]");
        let (seen, _) = frame(&pages, true).unwrap();
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn it_gives_up_on_what_it_does_not_expect() {
        // An escaped key (serde would read it as the list's name).
        assert!(frame(r#"{"Resource\u0054agMappingList": []}"#, false).is_none());
        // Unbalanced or truncated.
        assert!(frame(r#"{"ResourceTagMappingList": [{"ResourceARN": "x"}"#, false).is_none());
        assert!(frame(r#"{"a": [}"#, false).is_none());
        assert!(frame(r#"{"a": "unterminated}"#, false).is_none());
        // The caller refusing a mapping.
        assert!(
            scan(
                r#"{"ResourceTagMappingList": [{}]}"#.as_bytes(),
                false,
                |_| false
            )
            .is_none()
        );
    }
}
