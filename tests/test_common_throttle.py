"""The one sign-in lockout (linli.common.throttle), on a clock the test moves."""

from __future__ import annotations

from linli.common.throttle import FREE_FAILURES, LOGIN, Lockout, LockoutPolicy, Lockouts


def test_five_wrong_passwords_lock_for_30_s_doubling_with_each_further_failure_up_to_an_hour() -> None:
    # given an account that has never failed, at a clock the test controls
    account, now = Lockout(), 1000.0
    # when it gets four wrong passwords, it is not locked
    assert [account.fail(now) for _ in range(FREE_FAILURES - 1)] == [0, 0, 0, 0]
    assert account.remaining(now) == 0
    # then the fifth locks it for 30 s, the right password too (the caller asks `remaining` first)
    assert account.fail(now) == 30
    assert account.remaining(now) == 30 and account.remaining(now + 29.5) == 0.5
    assert account.remaining(now + 30) == 0
    # and every further failure after a lockout ends locks it twice as long, up to an hour
    waits = []
    for _ in range(10):
        now = account.locked_until or now
        waits.append(account.fail(now))
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]
    assert account.lockouts == 11
    # and a right password after the lockout forgives it all
    account.succeed()
    assert (account.failures, account.remaining(now), account.lockouts) == (0, 0, 0)
    assert account.fail(now) == 0


def test_a_policy_can_take_several_failures_per_further_lockout() -> None:
    # given the alarm keypad's numbers: five wrong codes per lockout, 30 s doubling up to 15 min
    keypad = LockoutPolicy(free_failures=5, base_s=30, max_s=900, failures_per_lockout=5)
    assert [keypad.lock_s(n) for n in range(1, 11)] == [0, 0, 0, 0, 30, 0, 0, 0, 0, 60]
    assert keypad.lock_s(5 + 5 * 10) == 900
    assert keypad.lockouts(4) == 0 and keypad.lockouts(5) == 1 and keypad.lockouts(14) == 2
    # and the password rule is the same shape with one failure per further lockout
    assert LOGIN.locked_until(5, now=100.0) == 130.0 and LOGIN.locked_until(4, now=100.0) is None


def test_a_lockout_survives_being_stored_and_read_back() -> None:
    account = Lockout()
    for _ in range(5):
        account.fail(50.0)
    again = Lockout.from_data(account.as_data())
    assert again == account and again.remaining(60.0) == 20.0


def test_names_without_an_account_lock_out_the_same_way_and_the_table_stays_bounded() -> None:
    # given the in-memory lockouts for names that have no account
    names = Lockouts(max_entries=4)
    # when one name fails five times, it is locked like an account, and another is not
    assert [names.fail("ghost", 10.0) for _ in range(5)][-1] == 30
    assert names.get("ghost").remaining(20.0) == 20 and names.get("other").remaining(20.0) == 0
    # when many more names fail, the table forgets the stalest half rather than grow
    for n in range(10):
        names.fail(f"spray{n}", 11.0)
    assert names.get("ghost").failures == 0 and names.get("spray9").failures == 1
    # and a right answer forgets a name at once
    names.succeed("spray9")
    assert names.get("spray9").failures == 0
