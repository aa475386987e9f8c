//! Values serde reads without ending the file: a refused value is kept with where it was
//! written, so `validate` reports it, with its line, beside every other problem of the file.
//!
//! Owns nothing but that: the enums themselves (`AuthMode`, `ProviderKind`…) derive their
//! spellings with serde, and serde writes the message.

use std::ops::Range;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// A value of type `T` as serde read it from the file, or serde's reason for refusing it.
#[derive(Debug, Clone)]
pub(crate) struct Parsed<T> {
    /// The value, or serde's message (`unknown variant `okta`, expected one of …`).
    pub(crate) value: Result<T, String>,
    /// Where the value is written, in bytes of the file.
    pub(crate) span: Range<usize>,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let written = Spanned::<toml::Value>::deserialize(d)?;
        let span = written.span();
        let value = T::deserialize(written.into_inner()).map_err(|e| e.message().to_string());
        Ok(Self { value, span })
    }
}

/// The line (from 1) holding byte `offset` of `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Colour {
        Red,
    }

    #[derive(Debug, Deserialize)]
    struct File {
        colour: Parsed<Colour>,
    }

    #[test]
    fn a_refused_value_keeps_serde_s_message_and_its_place() {
        let text = "\ncolour = \"red\"\n";
        let f: File = toml::from_str(text).unwrap();
        assert_eq!(f.colour.value, Ok(Colour::Red));
        assert_eq!(line_of(text, f.colour.span.start), 2);
        let f: File = toml::from_str("colour = \"blue\"").unwrap();
        assert_eq!(
            f.colour.value,
            Err("unknown variant `blue`, expected `red`".into())
        );
    }
}
