from openline.cli.main import run

run()
