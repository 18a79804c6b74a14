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

mod pack;
#[cfg(test)]
mod tests;

pub use self::pack::{Pack, Packer, Unpacker, get_varint, put_varint};

/// One value type of the lenient view: read from the value at the cursor,
/// which it always consumes (validating it), whatever its JSON type.
pub trait Field<'a>: Sized + Default {
    /// Replace `self` with the value at the cursor (or with the default when
    /// the value has another type). In place: the view of a record is a
    /// few hundred bytes, and reading it by value moved it at every level.
    fn read_in(&mut self, sc: &mut Scanner<'a>) -> json::Result<()>;
    /// Read (or skip and default) the value at the cursor.
    fn read(sc: &mut Scanner<'a>) -> json::Result<Self> {
        let mut v = Self::default();
        v.read_in(sc)?;
        Ok(v)
    }
}

/// A key just read, as bytes to dispatch on (decoded only when escaped);
/// `None` when its escapes do not decode (such a key matches none of ours).
#[inline]
fn key<'a>(sc: &Scanner<'a>, k: Str) -> Option<Cow<'a, [u8]>> {
    sc.key_bytes(k)
}

/// Whether `key` is the literal `lit`: lengths first, then a word or two
/// (overlapping) instead of a byte at a time. With `lit` a literal the
/// compiler folds its words into constants, and the chain of length tests
/// into a switch. An interpreter (Fluent Bit's WAMR) pays per instruction:
/// a byte-wise match cost about five per key byte.
#[inline(always)]
fn same_key(key: &[u8], lit: &[u8]) -> bool {
    #[inline(always)]
    fn w4(s: &[u8], at: usize) -> u32 {
        s.get(at..at + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(0, u32::from_le_bytes)
    }
    #[inline(always)]
    fn w8(s: &[u8], at: usize) -> u64 {
        s.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    }
    let n = lit.len();
    if key.len() != n {
        return false;
    }
    match n {
        4..=8 => w4(key, 0) == w4(lit, 0) && w4(key, n - 4) == w4(lit, n - 4),
        9..=16 => w8(key, 0) == w8(lit, 0) && w8(key, n - 8) == w8(lit, n - 8),
        17..=24 => {
            w8(key, 0) == w8(lit, 0) && w8(key, 8) == w8(lit, 8) && w8(key, n - 8) == w8(lit, n - 8)
        }
        _ => key == lit,
    }
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
    #[inline]
    fn read_in(&mut self, sc: &mut Scanner<'a>) -> json::Result<()> {
        self.0 = if sc.peek() == Some(b'"') {
            let s = sc.string()?;
            sc.decode(s)
        } else {
            sc.skip_value()?;
            None
        };
        Ok(())
    }
}

/// A member that is kept as raw JSON text (validated, UTF-8 included) and
/// decoded only when a rule needs it (`requestParameters`,
/// `responseElements`: large, and needed by few events).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Raw<'a>(pub Option<&'a [u8]>);

impl<'a> Field<'a> for Raw<'a> {
    fn read_in(&mut self, sc: &mut Scanner<'a>) -> json::Result<()> {
        sc.ws();
        let from = sc.pos();
        sc.skip_value()?;
        self.0 = Some(sc.bytes(from, sc.pos()));
        Ok(())
    }
}

/// A field that is present with any value but `null` or `""` (`sessionContext.ec2RoleDelivery` is `"1.0"` or `"2.0"`).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Present(pub bool);

impl<'a> Field<'a> for Present {
    fn read_in(&mut self, sc: &mut Scanner<'a>) -> json::Result<()> {
        let Raw(r) = Raw::read(sc)?;
        self.0 = !matches!(r, Some(b"null" | b"\"\""));
        Ok(())
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
    fn read_in(&mut self, sc: &mut Scanner<'a>) -> json::Result<()> {
        let v = &mut self.0;
        v.clear();
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
        Ok(())
    }
}

/// Declares a lenient struct: each field is read from its JSON key (a byte
/// string: keys are dispatched on their raw bytes, decoded only when they
/// hold an escape); unknown keys are skipped; a non-object value reads as
/// all-absent.
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
            #[inline(always)]
            pub(crate) fn visit_field(&mut self, sc: &mut Scanner<'a>, key: &[u8]) -> json::Result<bool> {
                $(if same_key(key, $key) {
                    self.$field.read_in(sc)?;
                    return Ok(true);
                })*
                Ok(false)
            }
            /// [`visit_field`](Self::visit_field) for a key that holds an escape: decoded first.
            #[cold]
            #[inline(never)]
            fn visit_escaped(&mut self, sc: &mut Scanner<'a>, k: Str) -> json::Result<bool> {
                match key(sc, k) {
                    Some(kb) => self.visit_field(sc, &kb),
                    None => Ok(false),
                }
            }
            /// Decode from the raw JSON text of one value; anything but an object reads as all-absent.
            pub fn from_raw(raw: &'a [u8]) -> Self {
                Scanner::checked(raw)
                    .and_then(|mut sc| Self::read(&mut sc))
                    .unwrap_or_default()
            }
        }
        impl<'a> Pack<'a> for $name<'a> {
            fn pack(&self, p: &mut Packer) {
                $(self.$field.pack(p);)*
            }
            fn unpack(&mut self, u: &mut Unpacker<'a>) -> Option<()> {
                $(self.$field.unpack(u)?;)*
                Some(())
            }
        }
        impl<'a> Field<'a> for $name<'a> {
            fn read_in(&mut self, sc: &mut Scanner<'a>) -> json::Result<()> {
                // A repeated key replaces the whole value (last one wins).
                *self = Self::default();
                if sc.peek() != Some(b'{') {
                    return sc.skip_value();
                }
                sc.object(|sc, k| {
                    if k.escaped {
                        return self.visit_escaped(sc, k);
                    }
                    // The common case: the key's bytes as they are, no `Cow`.
                    let kb = sc.bytes(k.start + 1, k.end.saturating_sub(1));
                    self.visit_field(sc, kb)
                })
            }
        }
    };
}

lenient_struct!(
    /// `userIdentity.sessionContext.sessionIssuer`
    SessionIssuer { arn: S<'a> = b"arn", kind: S<'a> = b"type", user_name: S<'a> = b"userName" }
);
lenient_struct!(
    /// `userIdentity.sessionContext.attributes`
    Attributes { creation_date: S<'a> = b"creationDate" }
);
lenient_struct!(
    /// `userIdentity.sessionContext`
    SessionContext {
        attributes: Attributes<'a> = b"attributes",
        session_issuer: SessionIssuer<'a> = b"sessionIssuer",
        ec2_role_delivery: Present = b"ec2RoleDelivery",
    }
);
lenient_struct!(
    /// `userIdentity`
    UserIdentity {
        kind: S<'a> = b"type",
        principal_id: S<'a> = b"principalId",
        arn: S<'a> = b"arn",
        account_id: S<'a> = b"accountId",
        access_key_id: S<'a> = b"accessKeyId",
        user_name: S<'a> = b"userName",
        invoked_by: S<'a> = b"invokedBy",
        identity_provider: S<'a> = b"identityProvider",
        session_context: SessionContext<'a> = b"sessionContext",
    }
);
lenient_struct!(
    /// `requestParameters` (the members credlineage reads)
    RequestParameters {
        role_arn: S<'a> = b"roleArn",
        role_session_name: S<'a> = b"roleSessionName",
        name: S<'a> = b"name",
        principal_arn: S<'a> = b"principalArn",
        instance_id: S<'a> = b"instanceId",
        public_ip: S<'a> = b"publicIp",
        association_id: S<'a> = b"associationId",
        user_name: S<'a> = b"userName",
        target_principal: S<'a> = b"targetPrincipal",
    }
);
lenient_struct!(
    /// `responseElements.credentials`
    Credentials {
        access_key_id: S<'a> = b"accessKeyId",
        expiration: S<'a> = b"expiration",
        session_token: S<'a> = b"sessionToken",
    }
);
lenient_struct!(
    /// `responseElements.assumedRoleUser` / `federatedUser`
    PrincipalRef { arn: S<'a> = b"arn" }
);
lenient_struct!(
    /// `responseElements.accessKey` (iam:CreateAccessKey)
    AccessKey { access_key_id: S<'a> = b"accessKeyId", user_name: S<'a> = b"userName" }
);
lenient_struct!(
    /// `association` of a network interface
    Association { public_ip: S<'a> = b"publicIp" }
);
lenient_struct!(
    /// One network interface of an instance in a RunInstances response
    NetworkInterface {
        private_ip_address: S<'a> = b"privateIpAddress",
        association: Association<'a> = b"association",
    }
);
lenient_struct!(
    /// `{"items": [...]}` of network interfaces
    NetworkInterfaceSet { items: Items<NetworkInterface<'a>> = b"items" }
);
lenient_struct!(
    /// One instance in a RunInstances response
    Instance {
        instance_id: S<'a> = b"instanceId",
        private_ip_address: S<'a> = b"privateIpAddress",
        ip_address: S<'a> = b"ipAddress",
        network_interface_set: NetworkInterfaceSet<'a> = b"networkInterfaceSet",
    }
);
lenient_struct!(
    /// `responseElements.instancesSet`
    InstancesSet { items: Items<Instance<'a>> = b"items" }
);
lenient_struct!(
    /// `responseElements` (the members credlineage reads)
    ResponseElements {
        credentials: Credentials<'a> = b"credentials",
        assumed_role_user: PrincipalRef<'a> = b"assumedRoleUser",
        federated_user: PrincipalRef<'a> = b"federatedUser",
        subject: S<'a> = b"subject",
        subject_from_web_identity_token: S<'a> = b"subjectFromWebIdentityToken",
        provider: S<'a> = b"provider",
        access_key: AccessKey<'a> = b"accessKey",
        instances_set: InstancesSet<'a> = b"instancesSet",
        association_id: S<'a> = b"associationId",
    }
);
lenient_struct!(
    /// One CloudTrail record: the members credlineage reads.
    Event {
        event_name: S<'a> = b"eventName",
        event_source: S<'a> = b"eventSource",
        event_time: S<'a> = b"eventTime",
        timestamp: S<'a> = b"@timestamp",
        error_code: S<'a> = b"errorCode",
        source_ip: S<'a> = b"sourceIPAddress",
        vpc_endpoint_id: S<'a> = b"vpcEndpointId",
        vpc_endpoint_account_id: S<'a> = b"vpcEndpointAccountId",
        recipient_account_id: S<'a> = b"recipientAccountId",
        user_identity: UserIdentity<'a> = b"userIdentity",
        request_parameters: Raw<'a> = b"requestParameters",
        response_elements: Raw<'a> = b"responseElements",
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
/// per configuration; a table of their first bytes and a set of their
/// lengths let every other key skip those checks (`managementEvent` shares
/// its first byte with `message`, not its length).
#[derive(Debug, Clone)]
pub struct TopKeys {
    string_fields: Vec<String>,
    own: OwnKeys,
    first: [bool; 256],
    /// Bit `n` set: some special key is `n` bytes long (bit 63: 63 or more).
    lengths: u64,
}

/// The bit of [`TopKeys::lengths`] for a key of `n` bytes.
#[inline]
fn length_bit(n: usize) -> u64 {
    1 << n.min(63)
}

impl TopKeys {
    /// The table for these string fields and own keys.
    pub fn new(string_fields: &[String], own: OwnKeys) -> TopKeys {
        let mut first = [false; 256];
        let mut lengths = 0u64;
        let mut mark = |k: &str, any_longer: bool| {
            match k.as_bytes().first() {
                Some(&b) => first[usize::from(b)] = true,
                None => first = [true; 256],
            }
            lengths |= if any_longer {
                // This length and every longer one.
                !(length_bit(k.len()) - 1)
            } else {
                length_bit(k.len())
            };
        };
        string_fields.iter().for_each(|f| mark(f, false));
        match &own {
            OwnKeys::Nested(ns) => mark(ns, false),
            OwnKeys::Flat { prefix, fields } if prefix.is_empty() => {
                fields.iter().for_each(|f| mark(f, false))
            }
            OwnKeys::Flat { prefix, .. } => mark(prefix, true),
        }
        TopKeys {
            string_fields: string_fields.to_vec(),
            own,
            first,
            lengths,
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
    fn may_be_special(&self, k: &[u8]) -> bool {
        self.lengths & length_bit(k.len()) != 0
            && k.first().is_none_or(|&b| self.first[usize::from(b)])
    }
}

/// Parse one input object. `Err` = not valid JSON; `Ok(None)` = valid JSON
/// but not an object.
pub fn parse_outer<'a>(text: &'a [u8], keys: &TopKeys) -> Result<Option<Outer<'a>>, ScanError> {
    let mut out = Outer::default();
    Ok(parse_outer_into(text, keys, &mut out)?.then_some(out))
}

/// [`parse_outer`] into a caller's `Outer` (left as read so far on error):
/// `Ok(false)` = valid JSON but not an object. The text is bytes, checked
/// for UTF-8 too ([`Scanner::checked`]: an `Ok` means it is all UTF-8).
pub fn parse_outer_into<'a>(
    text: &'a [u8],
    keys: &TopKeys,
    out: &mut Outer<'a>,
) -> Result<bool, ScanError> {
    let mut sc = Scanner::checked(text)?;
    let object = outer_value(&mut sc, keys, out)?;
    sc.end()?;
    Ok(object)
}

/// [`parse_outer_into`] on the JSON value that starts at the first byte of
/// `text` (UTF-8 already: a `&str`) and may be followed by anything — the
/// next elements of a document read in place. Returns whether the value is
/// an object and its length in bytes: the outcome is exactly
/// `parse_outer_into(&text[..len])`'s (the scanner never looks past a
/// value's last byte to read it), with every offset in `out` counted from
/// the start of `text`.
pub fn parse_outer_prefix<'a>(
    text: &'a str,
    keys: &TopKeys,
    out: &mut Outer<'a>,
) -> Result<(bool, usize), ScanError> {
    let mut sc = Scanner::new(text);
    let object = outer_value(&mut sc, keys, out)?;
    Ok((object, sc.pos()))
}

/// The value at the cursor, read as [`parse_outer_into`] reads it; the
/// cursor after it. `Ok(false)`: valid JSON but not an object.
#[inline(always)]
fn outer_value<'a>(
    sc: &mut Scanner<'a>,
    keys: &TopKeys,
    out: &mut Outer<'a>,
) -> Result<bool, ScanError> {
    if sc.peek() != Some(b'{') {
        sc.skip_value()?;
        return Ok(false);
    }
    sc.object(|sc, k| {
        out.members += 1;
        if k.escaped {
            return top_member_escaped(sc, k, keys, out);
        }
        // The common case: the key's bytes as they are, no `Cow`.
        let kb = sc.bytes(k.start + 1, k.end.saturating_sub(1));
        top_member(sc, kb, keys, out)
    })?;
    out.close = sc.pos().saturating_sub(1);
    Ok(true)
}

/// One top-level member of [`parse_outer_into`], the cursor on its value:
/// `Ok(true)` when read, `Ok(false)` to skip it.
#[inline(always)]
fn top_member<'a>(
    sc: &mut Scanner<'a>,
    kb: &[u8],
    keys: &TopKeys,
    out: &mut Outer<'a>,
) -> Result<bool, ScanError> {
    if keys.may_be_special(kb) {
        // Own keys and string fields are configured text: compare as text.
        let k = std::str::from_utf8(kb).unwrap_or_default();
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
    if same_key(kb, b"detail") {
        out.detail.read_in(sc)?;
    } else if same_key(kb, b"detail-type") {
        out.detail_type.read_in(sc)?;
    } else {
        return out.event.visit_field(sc, kb);
    }
    Ok(true)
}

/// [`top_member`] for a key that holds an escape: decoded first (a key whose
/// escapes do not decode matches none and is skipped).
#[cold]
#[inline(never)]
fn top_member_escaped<'a>(
    sc: &mut Scanner<'a>,
    k: Str,
    keys: &TopKeys,
    out: &mut Outer<'a>,
) -> Result<bool, ScanError> {
    match key(sc, k) {
        Some(kb) => top_member(sc, &kb, keys, out),
        None => Ok(false),
    }
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
