"""vLLM plugins of speech-gateway, loaded by vLLM itself through the `vllm.general_plugins` entry point.

vLLM calls each registered function in every process it starts (the API/front-end process when the
engine arguments are built, the model-registry inspection subprocess, the engine core and its
workers), before any model module is imported. Keep this package free of heavy imports.
"""
