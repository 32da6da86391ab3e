"""De-duplication keys are compact but never merge two different billingSessionIds."""

from tap_kore_billing.sessions.window_rows import compact_id


def test_lowercase_hex_ids_become_bytes():
    assert compact_id("5f1a2b3c4d5e6f7a8b9c0d1e") == bytes.fromhex("5f1a2b3c4d5e6f7a8b9c0d1e")


def test_other_ids_stay_distinct():
    ids = ["ABCDEF", "abcdef", "ab cdef", "abcde", "not-hex", ""]
    keys = [compact_id(i) for i in ids]
    assert len(set(keys)) == len(ids)
