"""papermill runs notebook 00 against the session server."""



def test_notebook_00(outputs, execute, real_server):
    out = execute("00_serve.ipynb", MAX_TOKENS=16)
    text = outputs(out)
    assert "The capital of France is Paris." in text  # the chat answer of the real model, greedy
    assert "attached to smollm2-135m" in text  # it reused the session server, it did not start another
    assert "smollm2-135m-safety" in text and "smollm2-135m-faq" in text  # /v1/models: the adapters beside it
    assert "qwen2.5-14b-instruct" in text and "weights alone exceed" in text
    assert real_server.healthy()
