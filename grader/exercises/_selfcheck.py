"""The self-check harness that ``grader.generate`` pastes, locked, into every exercise notebook.

Students may work without this repository (e.g. in Colab with only the notebook), so the harness is
plain Python with no imports from ``grader`` or ``solutions``. Everything after the marker line is
pasted; the generator fills ``POINTS`` with the notebook's graded functions and their points.
"""

# --- harness ---
# Self-check: run `self_check()` in any cell to run the visible test of every graded function and
# see one line per function. The grader runs the same tests plus hidden ones on random inputs.
POINTS: dict[str, float] = {}
VISIBLE_TESTS: dict = {}


def visible_test(test):
    """Register ``test_<name>`` as the visible test of the graded function ``<name>``."""
    VISIBLE_TESTS[test.__name__.removeprefix("test_")] = test
    return test


def self_check():
    """Run every visible test and print PASS / FAIL / TODO per graded function."""
    passed, earned = 0, 0.0
    print("Self-check (visible tests only; grading also runs hidden tests):")
    for name, points in POINTS.items():
        test = VISIBLE_TESTS.get(name)
        label = f"{name} ({points:g} point{'s' if points != 1 else ''})"
        try:
            if test is None:
                raise AssertionError("no visible test registered")
            test()
        except NotImplementedError:
            print(f"  TODO  {label}: not implemented yet")
        except AssertionError as err:
            print(f"  FAIL  {label}: {err or 'a check failed'}")
        except Exception as err:  # noqa: BLE001 - report any error of the student's code
            print(f"  FAIL  {label}: raised {type(err).__name__}: {err}")
        else:
            passed, earned = passed + 1, earned + points
            print(f"  PASS  {label}")
    total = sum(POINTS.values())
    print(f"Visible tests pass for {passed} of {len(POINTS)} functions ({earned:g} of {total:g} points).")
