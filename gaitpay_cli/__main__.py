from gaitpay_cli.main import app

app(prog_name="gaitpay")
