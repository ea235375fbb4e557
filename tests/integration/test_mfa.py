"""The second factor: enrolment, the login's code step, replay and drift, recovery codes,
turning it off, the audit trail, and every error of the new routes."""

from __future__ import annotations

import asyncio

from cryptography.fernet import Fernet
from sqlalchemy import text

from api.config.settings import Settings
from api.mfa.secrets import SecretBox
from api.mfa.service import reencrypt
from tests.integration.admin_helpers import admin_token
from tests.integration.conftest import (
    Harness,
    HarnessFactory,
    bearer,
    start_harness,
    stop_harness,
)
from tests.integration.mfa_helpers import (
    PASSWORD,
    claims,
    code,
    enrolled_user,
    password_step,
    secret_of,
    start_enrolment,
    steady,
)
from tests.integration.problems import assert_problem

EMAIL = "second@example.com"


async def _verify(harness: Harness, mfa_token: str, **proof: str) -> tuple[int, dict[str, object]]:
    response = await harness.client.post("/auth/mfa/verify", json={"mfa_token": mfa_token, **proof})
    return response.status_code, response.json()


async def test_enrolment_answers_a_secret_and_its_uri_and_changes_nothing_until_confirmed(
    harness: Harness,
) -> None:
    await harness.register(EMAIL)
    tokens = await harness.login(EMAIL)
    enrolment = await start_enrolment(harness, tokens["access_token"])
    uri = enrolment["otpauth_uri"]
    assert uri.startswith("otpauth://totp/")
    assert secret_of(uri) == enrolment["secret"]
    assert "issuer=Auth%20API" in uri and "second%40example.com" in uri
    # Not yet confirmed: the password alone still logs in, with amr ["pwd"].
    again = await harness.login(EMAIL)
    assert claims(again["access_token"])["amr"] == ["pwd"]
    me = await harness.client.get("/me", headers=bearer(again["access_token"]))
    assert me.json()["mfa_enabled"] is False


async def test_a_confirmed_factor_turns_the_password_into_a_challenge(harness: Harness) -> None:
    _, recovery_codes, tokens = await enrolled_user(harness, EMAIL)
    assert len(recovery_codes) == 10 and len(set(recovery_codes)) == 10
    me = await harness.client.get("/me", headers=bearer(tokens["access_token"]))
    assert me.json()["mfa_enabled"] is True
    response = await harness.client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    body = assert_problem(response, 401, "mfa_required")
    assert body["methods"] == ["totp", "recovery_code"]
    assert len(body["mfa_token"]) >= 40
    # Not a token problem: no Bearer challenge on the answer to a correct password.
    assert "WWW-Authenticate" not in response.headers
    wrong = await harness.client.post(
        "/auth/login", json={"email": EMAIL, "password": "not the password at all"}
    )
    assert_problem(wrong, 401, "invalid_credentials")


async def test_a_code_finishes_the_login_with_amr_otp_and_refresh_keeps_it(
    harness: Harness,
) -> None:
    secret, _, _ = await enrolled_user(harness, EMAIL)
    mfa_token = await password_step(harness, EMAIL, device_name="phone")
    counter = await steady()
    status, body = await _verify(harness, mfa_token, code=code(secret, counter))
    assert status == 200, body
    assert set(body) >= {"access_token", "refresh_token", "expires_in", "session_id"}
    assert claims(str(body["access_token"]))["amr"] == ["pwd", "otp"]
    assert claims(str(body["access_token"]))["fresh"] is True
    refreshed = await harness.client.post(
        "/auth/refresh", headers=bearer(str(body["refresh_token"]))
    )
    assert refreshed.status_code == 200
    assert claims(refreshed.json()["access_token"])["amr"] == ["pwd", "otp"]
    async with harness.resources.database.unit_of_work() as uow:
        row = await uow.session.execute(
            text("SELECT amr, device_name FROM sessions WHERE id = :id"),
            {"id": body["session_id"]},
        )
        assert tuple(row.one()) == ("pwd otp", "phone")
    # The mfa_token was single-use.
    status, again = await _verify(harness, mfa_token, code=code(secret, counter + 1))
    assert (status, again["code"]) == (401, "mfa_invalid")


async def test_a_used_code_is_refused_until_its_window_passes(harness: Harness) -> None:
    secret, _, _ = await enrolled_user(harness, EMAIL, confirm_step=-1)
    counter = await steady()
    status, _ = await _verify(
        harness, await password_step(harness, EMAIL), code=code(secret, counter)
    )
    assert status == 200
    replays = [code(secret, counter), code(secret, counter - 1)] * 5
    refused = 0
    for replay in replays:
        status, body = await _verify(harness, await password_step(harness, EMAIL), code=replay)
        refused += status == 401 and body["code"] == "mfa_invalid"
    print(f"replays refused: {refused} of {len(replays)}")
    assert refused == len(replays)
    # A code of another step still works: the refusals were replays, not a lock-out.
    status, _ = await _verify(
        harness, await password_step(harness, EMAIL), code=code(secret, counter + 1)
    )
    assert status == 200


async def test_one_step_of_drift_either_way_is_accepted_and_two_are_refused(
    harness: Harness,
) -> None:
    secret, _, _ = await enrolled_user(harness, EMAIL, confirm_step=+1)
    counter = await steady()
    for far in (counter - 2, counter + 2):
        status, body = await _verify(
            harness, await password_step(harness, EMAIL), code=code(secret, far)
        )
        assert (status, body["code"]) == (401, "mfa_invalid")
    status, _ = await _verify(
        harness, await password_step(harness, EMAIL), code=code(secret, counter - 1)
    )
    assert status == 200


async def test_the_same_fresh_code_sent_to_many_logins_at_once_finishes_one(
    settings: Settings,
) -> None:
    _, harness = await start_harness(settings)
    email = "replay-race@example.com"
    try:
        async with harness.client:
            secret, _, _ = await enrolled_user(harness, email, confirm_step=-1)
            tokens = [await password_step(harness, email) for _ in range(10)]
            counter = await steady()
            answers = await asyncio.gather(
                *(_verify(harness, t, code=code(secret, counter)) for t in tokens)
            )
            statuses = sorted(status for status, _ in answers)
            print(f"concurrent uses of one code: {statuses.count(200)} of {len(tokens)} succeeded")
            assert statuses == [200] + [401] * 9
    finally:
        await stop_harness(harness, email)


async def test_a_recovery_code_logs_in_once_with_amr_recovery(harness: Harness) -> None:
    _, recovery_codes, _ = await enrolled_user(harness, EMAIL)
    # Typed loosely: upper case and without dashes is the same code.
    loose = recovery_codes[0].upper().replace("-", " ")
    status, body = await _verify(harness, await password_step(harness, EMAIL), recovery_code=loose)
    assert status == 200, body
    assert claims(str(body["access_token"]))["amr"] == ["pwd", "recovery"]
    status, body = await _verify(
        harness, await password_step(harness, EMAIL), recovery_code=recovery_codes[0]
    )
    assert (status, body["code"]) == (401, "mfa_invalid")


async def test_twenty_concurrent_uses_of_one_recovery_code_succeed_once(
    settings: Settings,
) -> None:
    _, harness = await start_harness(settings)
    email = "recovery-race@example.com"
    rounds = 3
    try:
        async with harness.client:
            _, recovery_codes, _ = await enrolled_user(harness, email)
            wins = []
            for attempt in range(rounds):
                tokens = [await password_step(harness, email) for _ in range(20)]
                answers = await asyncio.gather(
                    *(_verify(harness, t, recovery_code=recovery_codes[attempt]) for t in tokens)
                )
                statuses = sorted(status for status, _ in answers)
                wins.append(statuses.count(200))
                assert statuses == [200] + [401] * 19
            print(f"concurrent uses of one recovery code, per round of 20: {wins} succeeded")
    finally:
        await stop_harness(harness, email)


async def test_one_mfa_token_finishes_one_login_however_many_good_codes_race(
    settings: Settings,
) -> None:
    _, harness = await start_harness(settings)
    email = "token-race@example.com"
    try:
        async with harness.client:
            _, recovery_codes, _ = await enrolled_user(harness, email)
            mfa_token = await password_step(harness, email)
            answers = await asyncio.gather(
                *(_verify(harness, mfa_token, recovery_code=c) for c in recovery_codes)
            )
            statuses = [status for status, _ in answers]
            assert sorted(statuses) == [200] + [401] * 9
            # The losers' codes were not spent: their transactions rolled back.
            unspent = [
                c for c, status in zip(recovery_codes, statuses, strict=True) if status != 200
            ]
            status, _ = await _verify(
                harness, await password_step(harness, email), recovery_code=unspent[0]
            )
            assert status == 200
    finally:
        await stop_harness(harness, email)


async def test_concurrent_guesses_at_one_mfa_token_check_at_most_the_account_limit(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(rate_limits_enabled=True, login_failure_limit="5/15 minutes")
    secret, _, _ = await enrolled_user(harness, EMAIL)
    mfa_token = await password_step(harness, EMAIL)
    counter = await steady()
    right = {code(secret, counter + offset) for offset in (-1, 0, 1)}
    guesses = [f"{n:06d}" for n in range(100000, 100040) if f"{n:06d}" not in right][:30]
    answers = await asyncio.gather(*(_verify(harness, mfa_token, code=g) for g in guesses))
    checked = sum(1 for status, body in answers if body["code"] == "mfa_invalid")
    limited = sum(1 for status, body in answers if body["code"] == "rate_limited")
    print(f"concurrent guesses checked: {checked} of {len(guesses)}")
    assert checked <= 5 and checked + limited == len(guesses)
    # The limit holds for the right code too, and for the password: the account waits.
    status, body = await _verify(harness, mfa_token, code=code(secret, counter))
    assert (status, body["code"]) == (429, "rate_limited")


async def test_the_mfa_token_is_bound_to_the_device_that_sent_the_password(
    harness: Harness,
) -> None:
    secret, _, _ = await enrolled_user(harness, EMAIL)
    mfa_token = await password_step(harness, EMAIL)
    counter = await steady()
    elsewhere = await harness.client.post(
        "/auth/mfa/verify",
        json={"mfa_token": mfa_token, "code": code(secret, counter)},
        headers={"User-Agent": "another device"},
    )
    assert_problem(elsewhere, 401, "mfa_invalid")
    status, _ = await _verify(harness, mfa_token, code=code(secret, counter))
    assert status == 200


async def test_verify_refuses_unknown_and_expired_tokens_and_malformed_bodies(
    harness: Harness,
) -> None:
    secret, _, _ = await enrolled_user(harness, EMAIL)
    counter = await steady()
    unknown = await harness.client.post(
        "/auth/mfa/verify", json={"mfa_token": "x" * 43, "code": code(secret, counter)}
    )
    assert_problem(unknown, 401, "mfa_invalid")
    mfa_token = await password_step(harness, EMAIL)
    redis = harness.resources.redis
    prefix = harness.resources.settings.redis_key_prefix
    keys = [key async for key in redis.scan_iter(match=f"{prefix}mfa:challenge:*")]
    assert len(keys) == 1
    await redis.delete(*keys)  # what its TTL does after MFA_TOKEN_TTL
    status, body = await _verify(harness, mfa_token, code=code(secret, counter))
    assert (status, body["code"]) == (401, "mfa_invalid")
    for bad in (
        {"mfa_token": mfa_token},
        {"mfa_token": mfa_token, "code": "123456", "recovery_code": "abcd"},
        {"mfa_token": mfa_token, "code": "12345"},
        {"mfa_token": mfa_token, "code": 123456},
        {"code": "123456"},
    ):
        response = await harness.client.post("/auth/mfa/verify", json=bad)
        assert_problem(response, 422, "validation_error")
    assert_problem(
        await harness.client.post(
            "/auth/mfa/verify", content=b"[]", headers={"Content-Type": "application/json"}
        ),
        400,
        "malformed_json",
    )


async def test_a_disabled_account_cannot_finish_its_login(harness: Harness) -> None:
    secret, _, _ = await enrolled_user(harness, EMAIL)
    mfa_token = await password_step(harness, EMAIL)
    _, root = await admin_token(harness, "root@example.com")
    user = (
        await harness.client.get("/admin/users", params={"email": EMAIL}, headers=bearer(root))
    ).json()["users"][0]
    assert (
        await harness.client.patch(
            f"/admin/users/{user['id']}", json={"disabled": True}, headers=bearer(root)
        )
    ).status_code == 200
    status, body = await _verify(harness, mfa_token, code=code(secret, await steady()))
    assert (status, body["code"]) == (403, "account_disabled")


async def test_enrolment_errors(harness: Harness) -> None:
    await harness.register(EMAIL)
    tokens = await harness.login(EMAIL)
    access = tokens["access_token"]
    refreshed = await harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    stale = refreshed.json()["access_token"]
    assert_problem(
        await harness.client.post("/me/mfa/totp", headers=bearer(stale)),
        401,
        "fresh_token_required",
    )
    assert_problem(await harness.client.post("/me/mfa/totp"), 401, "token_missing")
    # Nothing pending: no code can confirm.
    nothing = await harness.client.post(
        "/me/mfa/totp/confirm", json={"code": "123456"}, headers=bearer(access)
    )
    assert_problem(nothing, 401, "mfa_invalid")
    enrolment = await start_enrolment(harness, access)
    # A second start replaces the pending secret: the first one's codes don't confirm.
    replaced = await start_enrolment(harness, access)
    assert replaced["secret"] != enrolment["secret"]
    counter = await steady()
    old = await harness.client.post(
        "/me/mfa/totp/confirm",
        json={"code": code(enrolment["secret"], counter)},
        headers=bearer(access),
    )
    assert_problem(old, 401, "mfa_invalid")
    malformed = await harness.client.post(
        "/me/mfa/totp/confirm", json={"code": "abcdef"}, headers=bearer(access)
    )
    assert_problem(malformed, 422, "validation_error")
    spaced = await harness.client.post(
        "/me/mfa/totp/confirm",
        json={
            "code": " ".join(
                [code(replaced["secret"], counter)[:3], code(replaced["secret"], counter)[3:]]
            )
        },
        headers=bearer(access),
    )
    assert spaced.status_code == 200, spaced.text
    assert_problem(
        await harness.client.post("/me/mfa/totp", headers=bearer(access)),
        409,
        "mfa_already_enrolled",
    )
    again = await harness.client.post(
        "/me/mfa/totp/confirm",
        json={"code": code(replaced["secret"], counter + 1)},
        headers=bearer(access),
    )
    assert_problem(again, 409, "mfa_already_enrolled")


async def test_enrolment_in_production_without_a_key_is_refused_with_a_reason(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(app_env="production", mfa_encryption_key=())
    await harness.register(EMAIL)
    access = (await harness.login(EMAIL))["access_token"]
    body = assert_problem(
        await harness.client.post("/me/mfa/totp", headers=bearer(access)),
        503,
        "service_unavailable",
    )
    assert "MFA_ENCRYPTION_KEY" in body["detail"]


async def test_secrets_are_stored_encrypted_and_survive_a_key_rotation(
    make_harness: HarnessFactory,
) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    harness = await make_harness(mfa_encryption_key=(old_key,))
    secret, _, _ = await enrolled_user(harness, EMAIL)
    async with harness.resources.database.unit_of_work() as uow:
        stored = (
            await uow.session.execute(text("SELECT secret_encrypted FROM mfa_totp"))
        ).scalar_one()
    assert secret not in stored
    assert Fernet(old_key).decrypt(stored.encode()).decode() == secret
    # The new key goes first; the old one still decrypts until everything is re-encrypted.
    rotated = SecretBox((new_key, old_key))
    assert rotated.decrypt(stored) == secret
    database = harness.resources.database
    assert await reencrypt(database, rotated) == 1
    async with database.unit_of_work() as uow:
        stored = (
            await uow.session.execute(text("SELECT secret_encrypted FROM mfa_totp"))
        ).scalar_one()
    assert SecretBox((new_key,)).decrypt(stored) == secret
    assert await reencrypt(database, rotated) == 0


async def test_turning_the_factor_off_needs_a_fresh_token_and_a_code(harness: Harness) -> None:
    secret, recovery_codes, tokens = await enrolled_user(harness, EMAIL)
    access = tokens["access_token"]
    for bad in ({}, {"code": "123456", "recovery_code": recovery_codes[0]}):
        response = await harness.client.request(
            "DELETE", "/me/mfa/totp", json=bad, headers=bearer(access)
        )
        assert_problem(response, 422, "validation_error")
    counter = await steady()
    wrong = await harness.client.request(
        "DELETE", "/me/mfa/totp", json={"code": code(secret, counter + 5)}, headers=bearer(access)
    )
    assert_problem(wrong, 401, "mfa_invalid")
    refreshed = await harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    stale = await harness.client.request(
        "DELETE",
        "/me/mfa/totp",
        json={"code": code(secret, counter)},
        headers=bearer(refreshed.json()["access_token"]),
    )
    assert_problem(stale, 401, "fresh_token_required")
    off = await harness.client.request(
        "DELETE", "/me/mfa/totp", json={"recovery_code": recovery_codes[1]}, headers=bearer(access)
    )
    assert off.status_code == 204
    again = await harness.client.request(
        "DELETE", "/me/mfa/totp", json={"code": code(secret, counter)}, headers=bearer(access)
    )
    assert_problem(again, 404, "not_found")
    # The password alone logs in again.
    assert claims((await harness.login(EMAIL))["access_token"])["amr"] == ["pwd"]


async def test_turning_the_factor_off_with_a_code(harness: Harness) -> None:
    secret, _, tokens = await enrolled_user(harness, EMAIL)
    counter = await steady()
    off = await harness.client.request(
        "DELETE",
        "/me/mfa/totp",
        json={"code": code(secret, counter)},
        headers=bearer(tokens["access_token"]),
    )
    assert off.status_code == 204
    me = await harness.client.get("/me", headers=bearer(tokens["access_token"]))
    assert me.json()["mfa_enabled"] is False


async def test_new_recovery_codes_replace_the_old_set(harness: Harness) -> None:
    secret, old_codes, tokens = await enrolled_user(harness, EMAIL)
    access = tokens["access_token"]
    counter = await steady()
    wrong = await harness.client.post(
        "/me/mfa/recovery-codes", json={"code": code(secret, counter + 3)}, headers=bearer(access)
    )
    assert_problem(wrong, 401, "mfa_invalid")
    assert_problem(
        await harness.client.post("/me/mfa/recovery-codes", json={}, headers=bearer(access)),
        422,
        "validation_error",
    )
    replaced = await harness.client.post(
        "/me/mfa/recovery-codes", json={"code": code(secret, counter)}, headers=bearer(access)
    )
    assert replaced.status_code == 200
    new_codes = replaced.json()["recovery_codes"]
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    status, body = await _verify(
        harness, await password_step(harness, EMAIL), recovery_code=old_codes[0]
    )
    assert (status, body["code"]) == (401, "mfa_invalid")
    status, _ = await _verify(
        harness, await password_step(harness, EMAIL), recovery_code=new_codes[0]
    )
    assert status == 200


async def test_recovery_codes_of_a_user_without_a_factor_are_not_found(harness: Harness) -> None:
    await harness.register(EMAIL)
    access = (await harness.login(EMAIL))["access_token"]
    response = await harness.client.post(
        "/me/mfa/recovery-codes", json={"code": "123456"}, headers=bearer(access)
    )
    assert_problem(response, 404, "not_found")


async def test_the_audit_trail_records_the_factor_without_secrets(harness: Harness) -> None:
    secret, recovery_codes, _ = await enrolled_user(harness, EMAIL)
    counter = await steady()
    await _verify(harness, await password_step(harness, EMAIL), code=code(secret, counter + 4))
    await _verify(harness, await password_step(harness, EMAIL), code=code(secret, counter))
    await _verify(harness, await password_step(harness, EMAIL), recovery_code=recovery_codes[0])
    async with harness.resources.database.unit_of_work() as uow:
        rows = (
            await uow.session.execute(
                text(
                    "SELECT type, details::text FROM audit_events "
                    "WHERE type LIKE 'mfa.%' ORDER BY id"
                )
            )
        ).all()
    types = [row.type for row in rows]
    assert types == [
        "mfa.enrolled",
        "mfa.failed",
        "mfa.succeeded",
        "mfa.succeeded",
        "mfa.recovery_code_used",
    ]
    everything = " ".join(row.details for row in rows)
    assert secret not in everything and recovery_codes[0] not in everything
    assert '"remaining": 9' in everything and '"reason": "wrong_code"' in everything


async def test_outcomes_are_counted_in_the_metrics(harness: Harness) -> None:
    secret, _, _ = await enrolled_user(harness, EMAIL)
    await _verify(harness, await password_step(harness, EMAIL), code=code(secret, await steady()))
    text_ = (await harness.client.get("/metrics")).text
    assert 'auth_api_mfa_total{action="confirm",outcome="success"}' in text_
    assert 'auth_api_mfa_total{action="verify",outcome="success"}' in text_
