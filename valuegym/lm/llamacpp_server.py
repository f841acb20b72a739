"""llama-cpp-python's OpenAI-compatible server, with valuegym's choice of buffer types.

Run it as ``python -m valuegym.lm.llamacpp_server --model FILE.gguf --port 8000``; it takes
the arguments of ``python -m llama_cpp.server``, whose settings have no way to pass
``use_extra_bufts``. Models are loaded with the extra buffer types off on CPUs that advertise
AMX, where llama.cpp's AMX kernels crash (see :mod:`valuegym.lm.cpu`).
"""

from __future__ import annotations

from valuegym.lm.cpu import cpu_flags, llama_extra_buffer_types, use_extra_buffer_types

__all__ = ["main"]


def main() -> None:
    """Start the server (arguments from the command line), as ``llama_cpp.server`` does."""
    import llama_cpp
    from llama_cpp.server.__main__ import main as serve

    with llama_extra_buffer_types(llama_cpp, use_extra_buffer_types(cpu_flags())):
        serve()


if __name__ == "__main__":
    main()
