"""`python -m kafka_chaos_proxy`: the `kafka-chaos-proxy` CLI where the console script is not on
PATH (a fresh shell without the venv activated, a container with only `python`)."""

from kafka_chaos_proxy.proxy.cli import main

if __name__ == "__main__":
    main()
