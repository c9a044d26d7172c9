"""differnet-bench command line: ``python bench.py --help``."""

from bench.cli import main

if __name__ == "__main__":
    main()
