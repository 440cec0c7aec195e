from logtui.cli import main

raise SystemExit(main())
