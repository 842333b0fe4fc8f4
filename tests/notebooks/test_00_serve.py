"""papermill runs notebook 00 against the session server."""



def test_notebook_00(outputs, execute, server):
    out = execute("00_serve.ipynb", MAX_TOKENS=16)
    text = outputs(out)
    assert "Once upon a time, there was a little girl" in text
    assert "attached to stories260k" in text  # it reused the session server, it did not start another
    assert "qwen2.5-14b-instruct" in text and "weights alone exceed" in text
    assert server.healthy()
