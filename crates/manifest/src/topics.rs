//! Topic names: what the manifest, the bus and the publisher all accept.

/// Checks a topic name against what both bus backends accept (Kafka's own rule).
pub fn validate_topic(name: &str) -> Result<(), String> {
    let valid_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if name.is_empty() || name.len() > 249 || !valid_chars || name == "." || name == ".." {
        return Err(format!("invalid topic name `{name}`: use 1 to 249 letters, digits, `.`, `_` or `-`"));
    }
    Ok(())
}
