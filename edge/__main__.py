from edge.bootstrap import main

main()
