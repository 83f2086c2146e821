"""The offline preview: runs the real Pulumi program under Pulumi's mock runtime."""
