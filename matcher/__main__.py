from matcher.bootstrap import main

main()
