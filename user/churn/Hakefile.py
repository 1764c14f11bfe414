# churn: many short client lifetimes, then a check that nothing stayed behind
# (tests/test_lifetimes.py, docs/limits.md).
user_program("churn", srcs=["churn.c"])
