"""`ape compile` leaves no warning and no error in our own contracts.

ape-solidity does not show the compiler's warnings, so this test builds the same
standard-JSON input it builds (``get_standard_input_json``, in a temporary copy of the
project, as ``ape compile`` does, so no ``contracts/.cache`` appears in the tree), runs
the same compiler (py-solc-x's ``solc-v<version>`` executable, the solcjs adapter here)
and reads every diagnostic. Warnings located in dependencies (OpenZeppelin, Chainlink,
Uniswap) are not ours to fix: they are listed in a failure message, never a cause.
"""

from __future__ import annotations

import json

from packaging.version import Version
from solcx.install import get_executable
from solcx.wrapper import solc_wrapper


def _line(source: str, offset: int) -> int:
    return source[:offset].count("\n") + 1


def _describe(diagnostic: dict, sources: dict) -> str:
    location = diagnostic.get("sourceLocation") or {}
    file = location.get("file", "<no file>")
    content = sources.get(file, {}).get("content", "")
    line = _line(content, location["start"]) if content and location.get("start", -1) >= 0 else "?"
    return f"{file}:{line}: {diagnostic['severity']} ({diagnostic.get('errorCode', '-')}): {diagnostic['message']}"


def test_compile__our_contracts__no_errors_or_warnings(project, compilers):
    solidity = compilers.get_compiler("solidity")
    with project.isolate_in_tempdir() as isolated:
        paths = sorted((isolated.path / "contracts").glob("*.sol"))
        ours = {f"contracts/{path.name}" for path in paths}
        assert len(ours) >= 2, ours
        inputs = solidity.get_standard_input_json(paths, project=isolated)
        assert inputs, "ape-solidity built no compiler input"

        ours_found, dependency_warnings, compiled = [], [], set()
        for version, input_json in inputs.items():
            stdout, _, _, _ = solc_wrapper(
                solc_binary=get_executable(version=Version(version.base_version)),
                stdin=json.dumps(input_json),
                standard_json=True,
                base_path=isolated.path,
            )
            output = json.loads(stdout)
            compiled |= set(output.get("contracts", {}))
            for diagnostic in output.get("errors", []):
                file = (diagnostic.get("sourceLocation") or {}).get("file")
                described = _describe(diagnostic, input_json["sources"])
                if file in ours or diagnostic["severity"] == "error":
                    ours_found.append(described)
                elif diagnostic["severity"] == "warning":
                    dependency_warnings.append(described)

    assert not ours_found, "\n".join(
        ["Diagnostics in our contracts (or compile errors):", *ours_found]
        + ["Warnings in dependencies (ignored):", *dependency_warnings]
    )
    assert ours <= compiled, f"not compiled: {sorted(ours - compiled)}"
