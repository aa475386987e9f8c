//! Values serde reads without ending the file: a refused value is kept with where it was
//! written, so `validate` reports it, with its line, beside every other problem of the file.
//!
//! Owns nothing but that: the enums themselves (`AuthMode`, `ProviderKind`…) derive their
//! spellings with serde, and serde writes the message.

use std::ops::Range;

use serde::de::DeserializeOwned;
use serde::de::Visitor;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// A value of type `T` as serde read it from the file, or serde's reason for refusing it.
#[derive(Debug, Clone)]
pub(crate) struct Parsed<T> {
    /// The value, or serde's refusal (`unknown variant `okta`, expected one of …`).
    pub(crate) value: Result<T, toml::de::Error>,
    /// Where the value is written, in bytes of the file.
    pub(crate) span: Range<usize>,
}

impl<T: DeserializeOwned> Parsed<T> {
    /// Reads `T` from a value kept with its span.
    pub(crate) fn from_spanned(written: Spanned<toml::Value>) -> Self {
        let span = written.span();
        let value = T::deserialize(written.into_inner());
        Self { value, span }
    }

    /// Reads a list of `T`, each at the place of the whole list (toml keeps no place for the
    /// items of a value it has already read); serde's message when the value is no list.
    pub(crate) fn list(written: Spanned<toml::Value>) -> Result<Vec<Self>, toml::de::Error> {
        let span = written.span();
        let items = Vec::<toml::Value>::deserialize(written.into_inner())?;
        Ok(items
            .into_iter()
            .map(|item| Self {
                value: T::deserialize(item),
                span: span.clone(),
            })
            .collect())
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Spanned::<toml::Value>::deserialize(d).map(Self::from_spanned)
    }
}

/// The keys serde's derive reads for the struct `T`: the list it hands the deserializer, asked
/// of one that records it and reads nothing. Empty for anything but a struct.
pub(crate) fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe(&'static [&'static str]);
    struct Asked<'a>(&'a mut Probe);
    impl<'de> Deserializer<'de> for Asked<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("only asked for its keys"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 .0 = fields;
            Err(serde::de::Error::custom("only asked for its keys"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut probe = Probe(&[]);
    let _ = T::deserialize(Asked(&mut probe));
    probe.0
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

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Keys {
        a: bool,
        #[serde(rename = "b-b")]
        b: Option<String>,
    }

    #[test]
    fn the_keys_of_a_struct_are_the_ones_serde_reads() {
        assert_eq!(keys_of::<Keys>(), ["a", "b-b"]);
        assert!(keys_of::<String>().is_empty());
    }

    #[test]
    fn a_refused_value_keeps_serde_s_message_and_its_place() {
        let text = "\ncolour = \"red\"\n";
        let f: File = toml::from_str(text).unwrap();
        assert_eq!(f.colour.value.unwrap(), Colour::Red);
        assert_eq!(line_of(text, f.colour.span.start), 2);
        let f: File = toml::from_str("colour = \"blue\"").unwrap();
        assert_eq!(
            f.colour.value.unwrap_err().message(),
            "unknown variant `blue`, expected `red`"
        );
    }
}
