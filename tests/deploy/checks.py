"""The "ok - NAME" / "not ok - NAME: DETAIL" lines and their counts, shared
by the deploy tier's checkers (check_manifests.py, check_compose.py)."""

passed = 0
failed = 0


def check(name, ok, detail=""):
    """Prints one check's line and counts it."""
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name}{': ' + detail if detail else ''}")


def summary(what):
    """Prints "WHAT: N passed, M failed"; the exit status (1 if one failed)."""
    print(f"{what}: {passed} passed, {failed} failed")
    return 1 if failed else 0
