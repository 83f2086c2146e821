"""Day-2 commands for a deployed stack: `python -m ops <command> --stack <stack>`.

`list` (versions, rotation dates, missing secrets), `rotate <secret>`, `rollback <secret>` and
`check-env` (is every variable of the catalog set, and none a placeholder). The stack and the
catalog come from this repository's own files; AWS is reached through boto3 in the stack's region.
No command ever reads or prints a secret value.
"""
