//! Personal data in events, sealed with a key of its own (DESIGN §2): the log keeps only
//! ciphertext, so destroying the key erases the data from every event that carries it
//! without rewriting the log.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Authenticated ciphertext of a JSON document, under the key `key_id` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub key_id: Uuid,
    #[serde(with = "sealed_bytes")]
    pub nonce: Vec<u8>,
    #[serde(with = "sealed_bytes")]
    pub ciphertext: Vec<u8>,
}

/// Described as integrators read it: [`crate::public`] shows a sealed value only as
/// sealed (its store opens it through the API that serves the customer).
impl schemars::JsonSchema for Sealed {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Sealed".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Personal data, sealed with its customer's key.",
            "type": "object",
            "properties": {"sealed": {"const": true}},
            "required": ["sealed"],
            "additionalProperties": false
        })
    }
}

/// Sealed bytes are raw in the log's binary encoding (unchanged since the first event)
/// and base64 in JSON (read models): as an array of numbers, an order's JSON grew past
/// Postgres's inline limit and was compressed on every write. JSON written before still
/// reads.
mod sealed_bytes {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&STANDARD.encode(bytes))
        } else {
            bytes.serialize(serializer)
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Base64(String),
        Numbers(Vec<u8>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        if !deserializer.is_human_readable() {
            return Vec::deserialize(deserializer);
        }
        match Text::deserialize(deserializer)? {
            Text::Base64(text) => STANDARD.decode(text).map_err(D::Error::custom),
            Text::Numbers(bytes) => Ok(bytes),
        }
    }
}

/// Where an order ships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: String,
    pub phone: Option<String>,
}

/// The document a customer's or an order's [`Sealed`] contact opens to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDetails {
    pub email: String,
    pub name: Option<String>,
    pub shipping_address: Option<PostalAddress>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn sealed_json_is_base64_and_json_of_numbers_still_reads() {
        let sealed = Sealed {
            key_id: Uuid::from_u128(1),
            nonce: vec![0, 1, 2],
            ciphertext: vec![255, 254],
        };
        let written = serde_json::to_value(&sealed).unwrap();
        assert_eq!(written["nonce"], "AAEC");
        assert_eq!(written["ciphertext"], "//4=");
        assert_eq!(serde_json::from_value::<Sealed>(written).unwrap(), sealed);
        let earlier =
            json!({"key_id": Uuid::from_u128(1), "nonce": [0, 1, 2], "ciphertext": [255, 254]});
        assert_eq!(serde_json::from_value::<Sealed>(earlier).unwrap(), sealed);
        assert!(
            serde_json::from_value::<Sealed>(
                json!({"key_id": Uuid::from_u128(1), "nonce": "not base64!", "ciphertext": ""})
            )
            .is_err()
        );
    }
}
