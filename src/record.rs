//! A borrowed, lenient view of the CloudTrail fields credlineage reads; everything else is validated and skipped, never copied.
//!
//! Real logs are messy and a log line is attacker controlled, so every field
//! here tolerates the wrong type (a number where a string belongs, `null`, an
//! array where an object belongs) and undecodable strings (a lone surrogate
//! escape): the field then reads as absent, never the whole record.
//! Duplicate keys: the last one wins, as in most JSON parsers. The record is
//! read in one pass by [`crate::json::Scanner`], which validates the rest.

use crate::json::{self, ScanError, Scanner, Str};
use std::borrow::Cow;

/// One value type of the lenient view: read from the value at the cursor,
/// which it always consumes (validating it), whatever its JSON type.
pub trait Field<'a>: Sized + Default {
    /// Read (or skip and default) the value at the cursor.
    fn read(sc: &mut Scanner<'a>) -> json::Result<Self>;
}

/// A key just read, decoded; `None` when its escapes do not decode (such a
/// key matches none of ours).
#[inline]
fn key<'a>(sc: &Scanner<'a>, k: Str) -> Option<Cow<'a, str>> {
    sc.decode(k)
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

impl<'a> Field<'a> for S<'a> {
    fn read(sc: &mut Scanner<'a>) -> json::Result<Self> {
        if sc.peek() == Some(b'"') {
            let s = sc.string()?;
            Ok(S(sc.decode(s)))
        } else {
            sc.skip_value()?;
            Ok(S(None))
        }
    }
}

/// A member that is kept as raw JSON text and decoded only when a rule needs
/// it (`requestParameters`, `responseElements`: large, and needed by few events).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Raw<'a>(pub Option<&'a str>);

impl<'a> Field<'a> for Raw<'a> {
    fn read(sc: &mut Scanner<'a>) -> json::Result<Self> {
        sc.ws();
        let from = sc.pos();
        sc.skip_value()?;
        Ok(Raw(Some(sc.slice(from, sc.pos()))))
    }
}

/// A field that is present with any value but `null` or `""` (`sessionContext.ec2RoleDelivery` is `"1.0"` or `"2.0"`).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Present(pub bool);

impl<'a> Field<'a> for Present {
    fn read(sc: &mut Scanner<'a>) -> json::Result<Self> {
        let Raw(r) = Raw::read(sc)?;
        Ok(Present(!matches!(r, Some("null" | "\"\""))))
    }
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

impl<'a, T: Field<'a>> Field<'a> for Items<T> {
    fn read(sc: &mut Scanner<'a>) -> json::Result<Self> {
        let mut v = Vec::new();
        if sc.peek() == Some(b'[') {
            sc.array(|sc| {
                if v.len() < MAX_ITEMS {
                    v.push(T::read(sc)?);
                    Ok(true)
                } else {
                    Ok(false)
                }
            })?;
        } else {
            sc.skip_value()?;
        }
        Ok(Items(v))
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
            /// Read the value at the cursor into this struct if `key` is one of ours.
            pub(crate) fn visit_field(&mut self, sc: &mut Scanner<'a>, key: &str) -> json::Result<bool> {
                match key {
                    $($key => { self.$field = Field::read(sc)?; Ok(true) })*
                    _ => Ok(false),
                }
            }
            /// Decode from the raw JSON text of one value; anything but an object reads as all-absent.
            pub fn from_raw(raw: &'a str) -> Self {
                Self::read(&mut Scanner::new(raw)).unwrap_or_default()
            }
        }
        impl<'a> Field<'a> for $name<'a> {
            fn read(sc: &mut Scanner<'a>) -> json::Result<Self> {
                let mut out = Self::default();
                if sc.peek() != Some(b'{') {
                    sc.skip_value()?;
                    return Ok(out);
                }
                sc.object(|sc, k| match key(sc, k) {
                    Some(k) => out.visit_field(sc, &k),
                    None => Ok(false),
                })?;
                Ok(out)
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
    /// Count of top-level keys that collide with credlineage's own output
    /// key(s) and must be replaced.
    pub own_keys: usize,
    /// Number of top-level members.
    pub members: usize,
    /// Byte offset of the object's closing `}`.
    pub close: usize,
}

/// Which top-level keys are credlineage's own output (to be replaced).
#[derive(Debug, Clone)]
pub enum OwnKeys {
    /// The nested form: one key, the namespace.
    Nested(String),
    /// The flattened form: `prefix` + each of `fields`.
    Flat {
        /// The prefix configured.
        prefix: String,
        /// The annotation member names.
        fields: &'static [&'static str],
    },
}

/// The top-level keys that need more than a field lookup: credlineage's own
/// output keys and the string fields that may wrap a whole record. Built once
/// per configuration; a table of their first bytes lets every other key skip
/// those checks.
#[derive(Debug, Clone)]
pub struct TopKeys {
    string_fields: Vec<String>,
    own: OwnKeys,
    first: [bool; 256],
}

impl TopKeys {
    /// The table for these string fields and own keys.
    pub fn new(string_fields: &[String], own: OwnKeys) -> TopKeys {
        let mut first = [false; 256];
        let mut mark = |k: &str| match k.as_bytes().first() {
            Some(&b) => first[usize::from(b)] = true,
            None => first = [true; 256],
        };
        string_fields.iter().for_each(|f| mark(f));
        match &own {
            OwnKeys::Nested(ns) => mark(ns),
            OwnKeys::Flat { prefix, fields } if prefix.is_empty() => {
                fields.iter().for_each(|f| mark(f))
            }
            OwnKeys::Flat { prefix, .. } => mark(prefix),
        }
        TopKeys {
            string_fields: string_fields.to_vec(),
            own,
            first,
        }
    }

    /// Whether `k` is one of credlineage's own output keys.
    pub fn is_own(&self, k: &str) -> bool {
        match &self.own {
            OwnKeys::Nested(ns) => k == ns,
            OwnKeys::Flat { prefix, fields } => k
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| fields.contains(&rest)),
        }
    }

    #[inline]
    fn may_be_special(&self, k: &str) -> bool {
        k.as_bytes()
            .first()
            .is_none_or(|&b| self.first[usize::from(b)])
    }
}

/// Parse one input object. `Err` = not valid JSON; `Ok(None)` = valid JSON
/// but not an object.
pub fn parse_outer<'a>(text: &'a str, keys: &TopKeys) -> Result<Option<Outer<'a>>, ScanError> {
    let mut sc = Scanner::new(text);
    if sc.peek() != Some(b'{') {
        sc.skip_value()?;
        sc.end()?;
        return Ok(None);
    }
    let mut out = Outer::default();
    sc.object(|sc, k| {
        out.members += 1;
        let Some(k) = key(sc, k) else {
            return Ok(false);
        };
        let k = k.as_ref();
        if keys.may_be_special(k) {
            if keys.is_own(k) {
                out.own_keys += 1;
                return Ok(false);
            }
            if keys.string_fields.iter().any(|f| f == k) {
                if let S(Some(s)) = S::read(sc)? {
                    out.strings.push(s);
                }
                return Ok(true);
            }
        }
        match k {
            "detail" => out.detail = Event::read(sc)?,
            "detail-type" => out.detail_type = S::read(sc)?,
            _ => return out.event.visit_field(sc, k),
        }
        Ok(true)
    })?;
    out.close = sc.pos().saturating_sub(1);
    sc.end()?;
    Ok(Some(out))
}

/// Parse a record held as a JSON string: the inner text must be one CloudTrail object.
pub fn parse_inner(text: &str) -> Option<Event<'_>> {
    let mut sc = Scanner::new(text);
    if sc.peek() != Some(b'{') {
        return None;
    }
    let ev = Event::read(&mut sc).ok()?;
    sc.end().ok()?;
    ev.is_cloudtrail().then_some(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outer(b: &[u8]) -> Outer<'_> {
        parse_outer(
            std::str::from_utf8(b).unwrap(),
            &TopKeys::new(
                &["message".to_string()],
                OwnKeys::Nested("credlineage".into()),
            ),
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
        let k = TopKeys::new(&[], OwnKeys::Nested("credlineage".into()));
        assert!(parse_outer("[1]", &k).unwrap().is_none());
        assert!(parse_outer("\"s\"", &k).unwrap().is_none());
        assert!(parse_outer("{", &k).is_err());
        assert!(parse_outer("{} x", &k).is_err());
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
