"""The secrets-platform policy rules.

Imported by `policies/__main__.py` as the engine loads the pack: the pack directory is on
`sys.path` (the repository root is not), so this package is `guardrails`, never
`policies.guardrails`.
"""
