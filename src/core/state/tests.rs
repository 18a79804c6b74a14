//! Unit tests of the state tables' layout (the byte estimate's size constant).

#[test]
fn cred_set_size_constant_matches_64_bit_layout() {
    #[cfg(target_pointer_width = "64")]
    assert_eq!(std::mem::size_of::<super::CredSet>(), super::CRED_SET);
}
