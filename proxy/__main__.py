"""`python -m proxy`: the `kafka-chaos-proxy` CLI where the console script is not on PATH
(a fresh shell without the venv activated, a container with only `python`)."""

from proxy.cli import main

if __name__ == "__main__":
    main()
