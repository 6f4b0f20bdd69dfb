from billing.bootstrap import main

main()
