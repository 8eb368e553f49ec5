"""Token resolution and the constant-time bearer check."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from devtools.tokens import (
    ENV_VAR,
    authorized,
    bearer_header,
    parse_bearer,
    resolve_token,
    token_matches,
)

TOKENS = st.text(alphabet=string.ascii_letters + string.digits + "-_.~+/=", min_size=1)


def test_option_wins_over_environment():
    resolved = resolve_token("from-option", {ENV_VAR: "from-env"})
    assert (resolved.value, resolved.source, resolved.generated) == ("from-option", "option", False)


def test_environment_used_without_option():
    resolved = resolve_token(None, {ENV_VAR: "from-env"})
    assert (resolved.value, resolved.source) == ("from-env", "env")


def test_generated_when_neither_given_and_fresh_each_time():
    first = resolve_token(None, {})
    second = resolve_token("", {ENV_VAR: ""})
    assert first.generated and second.generated
    assert len(first.value) >= 32
    assert first.value != second.value


def test_parse_bearer_accepts_any_scheme_case_and_spacing():
    assert parse_bearer("Bearer abc") == "abc"
    assert parse_bearer("bearer   abc  ") == "abc"
    assert parse_bearer("  BEARER abc") == "abc"


def test_parse_bearer_refuses_other_schemes_and_empty_values():
    assert parse_bearer(None) is None
    assert parse_bearer("") is None
    assert parse_bearer("Basic dXNlcjpwYXNz") is None
    assert parse_bearer("Bearer") is None
    assert parse_bearer("Bearer   ") is None
    assert parse_bearer("abc") is None


def test_token_matches_only_the_same_token():
    assert token_matches("s3cret", "s3cret")
    assert not token_matches("s3cret", "s3cre")
    assert not token_matches("s3cret", "s3cret ")
    assert not token_matches("s3cret", None)
    assert not token_matches("", "")
    assert token_matches("jalapeño", "jalapeño")


def test_authorized_reads_the_header_value():
    assert authorized("t0k", bearer_header("t0k")["Authorization"])
    assert not authorized("t0k", "Bearer wrong")
    assert not authorized("t0k", None)


@given(TOKENS)
def test_bearer_header_round_trips(token):
    assert parse_bearer(bearer_header(token)["Authorization"]) == token
    assert authorized(token, bearer_header(token)["Authorization"])


@given(TOKENS, TOKENS)
def test_different_tokens_never_match(expected, presented):
    assert token_matches(expected, presented) == (expected == presented)
