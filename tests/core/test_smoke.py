def test_import() -> None:
    import observabilipy.core.models  # noqa: F401
