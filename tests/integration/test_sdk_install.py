"""The SDK installs and imports without the server's dependencies."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_the_sdk_imports_with_server_packages_blocked():
    script = textwrap.dedent(
        """
        import sys

        class Block:
            BLOCKED = (
                "fastapi", "sqlalchemy", "alembic", "uvicorn", "jsonschema", "psycopg",
                "pydantic_settings",
            )

            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in self.BLOCKED:
                    raise ImportError(f"blocked: {name}")
                return None

        sys.meta_path.insert(0, Block())
        import signoff
        from signoff import client, errors, schemas, webhooks
        from signoff.cli import main
        assert signoff.Client and signoff.AsyncClient
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_sdk_declares_no_server_dependencies():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    for server_only in ("fastapi", "sqlalchemy", "alembic", "uvicorn", "psycopg"):
        assert server_only not in runtime
