//! The schema of a serde type, read from its `Deserialize` impl: a deserializer that holds no
//! data and answers each request with a placeholder (`false`, `0`, `""`, one element, one
//! entry), recording what was asked. A struct hands its field names to `deserialize_struct`;
//! each field is then fed and its value traced in turn. Recursion is bounded by depth.

use std::collections::BTreeMap;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::Schema;

/// How deep a type may nest before the trace stops (a recursive type would not end).
const MAX_DEPTH: usize = 32;

pub(super) fn schema<T: DeserializeOwned>() -> Schema {
    let mut out = Schema::Leaf;
    // A type that refuses every placeholder (a custom impl) ends the trace early: what was
    // recorded until then is kept, the rest stays a leaf.
    let _ = T::deserialize(Tracer {
        out: &mut out,
        depth: 0,
    });
    out
}

#[derive(Debug)]
struct Stop(String);

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Stop(msg.to_string())
    }
}

struct Tracer<'a> {
    out: &'a mut Schema,
    depth: usize,
}

impl Tracer<'_> {
    fn deeper(&self) -> Result<usize, Stop> {
        if self.depth >= MAX_DEPTH {
            return Err(Stop("too deep".to_owned()));
        }
        Ok(self.depth + 1)
    }
}

macro_rules! leaf {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> Deserializer<'de> for Tracer<'_> {
    type Error = Stop;

    leaf! {
        deserialize_any => visit_unit(),
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(0),
        deserialize_i16 => visit_i64(0),
        deserialize_i32 => visit_i64(0),
        deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u64(0),
        deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0),
        deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('a'),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
        deserialize_bytes => visit_bytes(&[]),
        deserialize_byte_buf => visit_bytes(&[]),
        deserialize_unit => visit_unit(),
        deserialize_identifier => visit_str(""),
        deserialize_ignored_any => visit_unit(),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        self.deserialize_tuple(1, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Stop> {
        let depth = self.deeper()?;
        *self.out = Schema::Seq(Box::default());
        let Schema::Seq(elem) = self.out else {
            unreachable!("just set")
        };
        visitor.visit_seq(Elements {
            first: Some(elem),
            left: len,
            depth,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        let depth = self.deeper()?;
        *self.out = Schema::Map(Box::default());
        let Schema::Map(value) = self.out else {
            unreachable!("just set")
        };
        visitor.visit_map(Entry {
            value: Some(value),
            depth,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let depth = self.deeper()?;
        *self.out = Schema::Struct(fields.iter().map(|f| (*f, Schema::Leaf)).collect());
        let Schema::Struct(map) = self.out else {
            unreachable!("just set")
        };
        visitor.visit_map(Fields {
            fields,
            map,
            next: 0,
            depth,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let variant = variants.first().copied().unwrap_or_default();
        visitor.visit_enum(Variant {
            name: variant,
            tracer: self,
        })
    }
}

/// A list: the first element traced into the schema, the others (a tuple's) thrown away.
struct Elements<'a> {
    first: Option<&'a mut Schema>,
    left: usize,
    depth: usize,
}

impl<'de> SeqAccess<'de> for Elements<'_> {
    type Error = Stop;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Stop> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let mut scratch = Schema::Leaf;
        let out = self.first.take().unwrap_or(&mut scratch);
        seed.deserialize(Tracer {
            out,
            depth: self.depth,
        })
        .map(Some)
    }
}

/// A map of one entry: a key that is data, and the value traced.
struct Entry<'a> {
    value: Option<&'a mut Schema>,
    depth: usize,
}

impl<'de> MapAccess<'de> for Entry<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        if self.value.is_none() {
            return Ok(None);
        }
        let mut scratch = Schema::Leaf;
        seed.deserialize(Tracer {
            out: &mut scratch,
            depth: self.depth,
        })
        .map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Stop> {
        let mut scratch = Schema::Leaf;
        let out = self.value.take().unwrap_or(&mut scratch);
        seed.deserialize(Tracer {
            out,
            depth: self.depth,
        })
    }
}

/// A struct's fields, each key given once and its value traced.
struct Fields<'a> {
    fields: &'static [&'static str],
    map: &'a mut BTreeMap<&'static str, Schema>,
    next: usize,
    depth: usize,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        let Some(name) = self.fields.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(de::value::BorrowedStrDeserializer::new(name))
            .map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Stop> {
        let name = self.fields.get(self.next).copied().unwrap_or_default();
        self.next += 1;
        let mut scratch = Schema::Leaf;
        let out = self.map.get_mut(name).unwrap_or(&mut scratch);
        seed.deserialize(Tracer {
            out,
            depth: self.depth,
        })
    }
}

/// An enum: its first variant, traced whatever its kind.
struct Variant<'a> {
    name: &'static str,
    tracer: Tracer<'a>,
}

impl<'de, 'a> EnumAccess<'de> for Variant<'a> {
    type Error = Stop;
    type Variant = Tracer<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Tracer<'a>), Stop> {
        let v = seed.deserialize(de::value::BorrowedStrDeserializer::new(self.name))?;
        Ok((v, self.tracer))
    }
}

impl<'de> VariantAccess<'de> for Tracer<'_> {
    type Error = Stop;

    fn unit_variant(self) -> Result<(), Stop> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Stop> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Stop> {
        self.deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.deserialize_struct("", fields, visitor)
    }
}
