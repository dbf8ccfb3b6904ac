//! The digest header code that has no public entry point of its own, for
//! the fuzz targets in `tests/fuzz`: not part of the crate's API.

use super::algorithm::Algorithm;
use super::error::CredentialsError;

/// The `name=value, ...` list after the scheme of an `Authorization` or
/// `WWW-Authenticate` value: names lowercased, values unquoted.
pub fn auth_params(text: &str) -> Result<Vec<(String, String)>, CredentialsError> {
    super::header::parse_params(text)
}

/// The `WWW-Authenticate` value the server sends for these parts.
pub fn challenge_value(
    realm: &str,
    nonce: &str,
    opaque: &str,
    algorithm: Algorithm,
    stale: bool,
) -> String {
    super::header::challenge_value(realm, nonce, opaque, algorithm, stale)
}
