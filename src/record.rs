//! A borrowed, lenient view of the CloudTrail fields credlineage reads; everything else is validated and skipped, never copied.
//!
//! Real logs are messy and a log line is attacker controlled, so every field
//! here tolerates the wrong type (a number where a string belongs, `null`, an
//! array where an object belongs): the field then reads as absent. Duplicate
//! keys: the last one wins, as in most JSON parsers.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

// Every field is first read as raw JSON text (which only fails when the
// record is not valid JSON) and then decoded from that text, where any
// failure -- a lone surrogate escape, a number out of range, the wrong type --
// makes just that field absent instead of the whole record unreadable.

/// Read the next value as raw JSON text.
fn raw<'de, D: Deserializer<'de>>(d: D) -> Result<&'de str, D::Error> {
    <&'de RawValue>::deserialize(d).map(RawValue::get)
}

/// Decode raw JSON text as a string, if it is one.
fn decode_str(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        // Valid JSON without escapes: the text is the string itself.
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
}

/// A string field: `Some` only when the JSON value is a (decodable) string.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct S<'a>(pub Option<Cow<'a, str>>);

impl<'a> S<'a> {
    /// The string, when present and non-empty.
    pub fn get(&self) -> Option<&str> {
        match &self.0 {
            Some(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }
    /// Whether the field was present with any string value (even empty).
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for S<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(S(decode_str(raw(d)?)))
    }
}

/// A member that is kept as raw JSON text and decoded only when a rule needs
/// it (`requestParameters`, `responseElements`: large, and needed by few events).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Raw<'a>(pub Option<&'a str>);

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Raw(Some(raw(d)?)))
    }
}

/// A field that is present with any value but `null` or `""` (`sessionContext.ec2RoleDelivery` is `"1.0"` or `"2.0"`).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Present(pub bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = raw(d)?;
        Ok(Present(r != "null" && r != "\"\""))
    }
}

/// A map key. Keys are read strictly (unlike values): serde_json's lenient
/// byte mode would also let raw control characters through, i.e. invalid JSON.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        &self.0
    }
}

/// Consume the rest of a map or sequence without keeping anything.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A JSON array of lenient items, keeping at most [`MAX_ITEMS`]; empty when not an array.
#[derive(Debug, Clone, PartialEq)]
pub struct Items<T>(pub Vec<T>);

impl<T> Default for Items<T> {
    fn default() -> Self {
        Items(Vec::new())
    }
}

/// How many array items a list field keeps (the rest is validated and skipped).
pub const MAX_ITEMS: usize = 64;

impl<'de: 'a, 'a, T: Deserialize<'a>> Deserialize<'de> for Items<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Items<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items<T>, A::Error> {
                let mut v = Vec::new();
                while v.len() < MAX_ITEMS {
                    match seq.next_element::<T>()? {
                        Some(x) => v.push(x),
                        None => return Ok(Items(v)),
                    }
                }
                drain_seq(seq)?;
                Ok(Items(v))
            }
        }
        let r: &'a str = raw(d)?;
        if !r.starts_with('[') {
            return Ok(Items::default());
        }
        let mut de = serde_json::Deserializer::from_str(r);
        Ok(de
            .deserialize_seq(V(std::marker::PhantomData))
            .unwrap_or_default())
    }
}

/// Declares a lenient struct: each field is read from its JSON key; unknown
/// keys are skipped; a non-object value reads as all-absent.
macro_rules! lenient_struct {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty = $key:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Default, Clone, PartialEq)]
        pub struct $name<'a> {
            $($(#[$fm])* pub $field: $ty,)*
            #[doc(hidden)]
            pub _p: std::marker::PhantomData<&'a ()>,
        }
        impl<'a> $name<'a> {
            /// Read one member into this struct if its key is one of ours.
            #[allow(dead_code)]
            pub(crate) fn visit_field<'de: 'a, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
                match key {
                    $($key => { self.$field = map.next_value()?; Ok(true) })*
                    _ => Ok(false),
                }
            }
            /// Decode from the raw JSON text of one value; anything but an object reads as all-absent.
            pub fn from_raw(raw: &'a str) -> Self {
                struct V<'a>(std::marker::PhantomData<&'a ()>);
                impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                    type Value = $name<'a>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$name<'a>, A::Error> {
                        let mut out = $name::default();
                        while let Some(k) = map.next_key::<Key<'de>>()? {
                            if !out.visit_field(k.as_str(), &mut map)? {
                                map.next_value::<IgnoredAny>()?;
                            }
                        }
                        Ok(out)
                    }
                }
                if !raw.starts_with('{') {
                    return Self::default();
                }
                let mut de = serde_json::Deserializer::from_str(raw);
                de.deserialize_map(V(std::marker::PhantomData)).unwrap_or_default()
            }
        }
        impl<'de: 'a, 'a> Deserialize<'de> for $name<'a> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Self::from_raw(raw(d)?))
            }
        }
    };
}

lenient_struct!(
    /// `userIdentity.sessionContext.sessionIssuer`
    SessionIssuer { arn: S<'a> = "arn", kind: S<'a> = "type", user_name: S<'a> = "userName" }
);
lenient_struct!(
    /// `userIdentity.sessionContext.attributes`
    Attributes { creation_date: S<'a> = "creationDate" }
);
lenient_struct!(
    /// `userIdentity.sessionContext`
    SessionContext {
        attributes: Attributes<'a> = "attributes",
        session_issuer: SessionIssuer<'a> = "sessionIssuer",
        ec2_role_delivery: Present = "ec2RoleDelivery",
    }
);
lenient_struct!(
    /// `userIdentity`
    UserIdentity {
        kind: S<'a> = "type",
        principal_id: S<'a> = "principalId",
        arn: S<'a> = "arn",
        account_id: S<'a> = "accountId",
        access_key_id: S<'a> = "accessKeyId",
        user_name: S<'a> = "userName",
        invoked_by: S<'a> = "invokedBy",
        identity_provider: S<'a> = "identityProvider",
        session_context: SessionContext<'a> = "sessionContext",
    }
);
lenient_struct!(
    /// `requestParameters` (the members credlineage reads)
    RequestParameters {
        role_arn: S<'a> = "roleArn",
        role_session_name: S<'a> = "roleSessionName",
        name: S<'a> = "name",
        principal_arn: S<'a> = "principalArn",
        instance_id: S<'a> = "instanceId",
        public_ip: S<'a> = "publicIp",
        user_name: S<'a> = "userName",
        target_principal: S<'a> = "targetPrincipal",
    }
);
lenient_struct!(
    /// `responseElements.credentials`
    Credentials {
        access_key_id: S<'a> = "accessKeyId",
        expiration: S<'a> = "expiration",
        session_token: S<'a> = "sessionToken",
    }
);
lenient_struct!(
    /// `responseElements.assumedRoleUser` / `federatedUser`
    PrincipalRef { arn: S<'a> = "arn" }
);
lenient_struct!(
    /// `responseElements.accessKey` (iam:CreateAccessKey)
    AccessKey { access_key_id: S<'a> = "accessKeyId", user_name: S<'a> = "userName" }
);
lenient_struct!(
    /// `association` of a network interface
    Association { public_ip: S<'a> = "publicIp" }
);
lenient_struct!(
    /// One network interface of an instance in a RunInstances response
    NetworkInterface {
        private_ip_address: S<'a> = "privateIpAddress",
        association: Association<'a> = "association",
    }
);
lenient_struct!(
    /// `{"items": [...]}` of network interfaces
    NetworkInterfaceSet { items: Items<NetworkInterface<'a>> = "items" }
);
lenient_struct!(
    /// One instance in a RunInstances response
    Instance {
        instance_id: S<'a> = "instanceId",
        private_ip_address: S<'a> = "privateIpAddress",
        ip_address: S<'a> = "ipAddress",
        network_interface_set: NetworkInterfaceSet<'a> = "networkInterfaceSet",
    }
);
lenient_struct!(
    /// `responseElements.instancesSet`
    InstancesSet { items: Items<Instance<'a>> = "items" }
);
lenient_struct!(
    /// `responseElements` (the members credlineage reads)
    ResponseElements {
        credentials: Credentials<'a> = "credentials",
        assumed_role_user: PrincipalRef<'a> = "assumedRoleUser",
        federated_user: PrincipalRef<'a> = "federatedUser",
        subject: S<'a> = "subject",
        subject_from_web_identity_token: S<'a> = "subjectFromWebIdentityToken",
        provider: S<'a> = "provider",
        access_key: AccessKey<'a> = "accessKey",
        instances_set: InstancesSet<'a> = "instancesSet",
    }
);
lenient_struct!(
    /// One CloudTrail record: the members credlineage reads.
    Event {
        event_name: S<'a> = "eventName",
        event_source: S<'a> = "eventSource",
        event_time: S<'a> = "eventTime",
        timestamp: S<'a> = "@timestamp",
        error_code: S<'a> = "errorCode",
        source_ip: S<'a> = "sourceIPAddress",
        vpc_endpoint_id: S<'a> = "vpcEndpointId",
        vpc_endpoint_account_id: S<'a> = "vpcEndpointAccountId",
        recipient_account_id: S<'a> = "recipientAccountId",
        user_identity: UserIdentity<'a> = "userIdentity",
        request_parameters: Raw<'a> = "requestParameters",
        response_elements: Raw<'a> = "responseElements",
    }
);

impl<'a> Event<'a> {
    /// Whether this object is a CloudTrail record (SPEC 2: at least `eventName` and `eventSource`).
    pub fn is_cloudtrail(&self) -> bool {
        self.event_name.get().is_some() && self.event_source.get().is_some()
    }
    /// `requestParameters`, decoded now (only the events whose rules need it pay for it).
    pub fn request_parameters(&self) -> RequestParameters<'a> {
        self.request_parameters
            .0
            .map(RequestParameters::from_raw)
            .unwrap_or_default()
    }
    /// `responseElements`, decoded now.
    pub fn response_elements(&self) -> ResponseElements<'a> {
        self.response_elements
            .0
            .map(ResponseElements::from_raw)
            .unwrap_or_default()
    }
}

/// The top level of an input object: the record itself, or a wrapper around it.
#[derive(Debug, Default)]
pub struct Outer<'a> {
    /// The object read as a CloudTrail record.
    pub event: Event<'a>,
    /// `detail` (EventBridge envelope).
    pub detail: Event<'a>,
    /// `detail-type` (EventBridge envelope).
    pub detail_type: S<'a>,
    /// String fields configured as possibly holding a whole record, in key order.
    pub strings: Vec<Cow<'a, str>>,
    /// Byte offsets of nothing: count of top-level keys that collide with
    /// credlineage's own output key(s) and must be replaced.
    pub own_keys: usize,
    /// Number of top-level members.
    pub members: usize,
}

/// Reads the top level, with the names that need special treatment.
pub struct OuterSeed<'c> {
    /// Configured string fields (`message`, `log`).
    pub string_fields: &'c [String],
    /// Returns whether a top-level key is one credlineage writes (to be replaced).
    pub is_own_key: &'c dyn Fn(&str) -> bool,
}

impl<'de, 'c> Visitor<'de> for OuterSeed<'c> {
    type Value = Option<Outer<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Outer::default();
        while let Some(k) = map.next_key::<Key<'de>>()? {
            let k = k.as_str();
            out.members += 1;
            if (self.is_own_key)(k) {
                out.own_keys += 1;
                map.next_value::<IgnoredAny>()?;
            } else if k == "detail" {
                out.detail = map.next_value()?;
            } else if k == "detail-type" {
                out.detail_type = map.next_value()?;
            } else if self.string_fields.iter().any(|f| f == k) {
                if let S(Some(s)) = map.next_value::<S<'de>>()? {
                    out.strings.push(s);
                }
            } else if !out.event.visit_field(k, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Some(out))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

impl<'de, 'c> DeserializeSeed<'de> for OuterSeed<'c> {
    type Value = Option<Outer<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Parse one input object. `Err` = not valid JSON; `Ok(None)` = valid JSON but not an object.
pub fn parse_outer<'a>(
    text: &'a str,
    string_fields: &[String],
    is_own_key: &dyn Fn(&str) -> bool,
) -> Result<Option<Outer<'a>>, serde_json::Error> {
    // From &str: the whole input is known UTF-8, so no per-string re-check.
    let mut de = serde_json::Deserializer::from_str(text);
    let v = OuterSeed {
        string_fields,
        is_own_key,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Parse a record held as a JSON string: the inner text must be one CloudTrail object.
pub fn parse_inner(text: &str) -> Option<Event<'_>> {
    let raw = serde_json::from_str::<&RawValue>(text).ok()?.get();
    let ev = Event::from_raw(raw);
    ev.is_cloudtrail().then_some(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outer(b: &[u8]) -> Outer<'_> {
        parse_outer(
            std::str::from_utf8(b).unwrap(),
            &["message".to_string()],
            &|k| k == "credlineage",
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn wrong_types_read_as_absent() {
        let o = outer(
            br#"{"eventName":1,"eventSource":null,"userIdentity":"x","eventTime":["a"],
                "responseElements":{"credentials":[1,2]},"requestParameters":{"roleArn":{"a":1}}}"#,
        );
        assert!(o.event.event_name.get().is_none());
        assert!(o.event.user_identity.arn.get().is_none());
        assert!(
            o.event
                .response_elements()
                .credentials
                .access_key_id
                .get()
                .is_none()
        );
    }

    #[test]
    fn duplicates_last_wins_and_escapes_decode() {
        let o =
            outer(br#"{"eventName":"A","eventName":"B\u0041","credlineage":1,"credlineage":{}}"#);
        assert_eq!(o.event.event_name.get(), Some("BA"));
        assert_eq!(o.own_keys, 2);
        assert_eq!(o.members, 4);
    }

    #[test]
    fn not_objects() {
        assert!(parse_outer("[1]", &[], &|_| false).unwrap().is_none());
        assert!(parse_outer("\"s\"", &[], &|_| false).unwrap().is_none());
        assert!(parse_outer("{", &[], &|_| false).is_err());
        assert!(parse_outer("{} x", &[], &|_| false).is_err());
    }

    #[test]
    fn string_wrapped() {
        let o = outer(br#"{"message":"{\"eventName\":\"X\",\"eventSource\":\"s\"}"}"#);
        let inner = parse_inner(&o.strings[0]).unwrap();
        assert_eq!(inner.event_name.get(), Some("X"));
    }

    #[test]
    fn items_capped() {
        let mut s = String::from(r#"{"responseElements":{"instancesSet":{"items":["#);
        for i in 0..1000 {
            if i > 0 {
                s.push(',');
            }
            s.push_str(r#"{"instanceId":"i-1"}"#);
        }
        s.push_str("]}}}");
        let o = outer(s.as_bytes());
        assert_eq!(
            o.event.response_elements().instances_set.items.0.len(),
            MAX_ITEMS
        );
    }
}
