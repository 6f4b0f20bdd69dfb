from identity.bootstrap import main

main()
