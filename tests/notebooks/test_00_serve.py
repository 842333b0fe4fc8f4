"""papermill runs notebook 00 against the session server."""

import json


def _outputs(path):
    cells = json.loads(path.read_text())["cells"]
    return "\n".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
    )


def test_notebook_00(execute, server):
    out = execute("00_serve.ipynb", MAX_TOKENS=16)
    text = _outputs(out)
    assert "Once upon a time, there was a little girl" in text
    assert "attached to stories260k" in text  # it reused the session server, it did not start another
    assert "qwen2.5-14b-instruct" in text and "weights alone exceed" in text
    assert server.healthy()
