"""``python -m observabilipy.cli``: the ``observabilipy`` command."""

from observabilipy.cli.app import main

if __name__ == "__main__":
    main(prog_name="observabilipy")
