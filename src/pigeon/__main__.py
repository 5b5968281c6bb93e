from pigeon.launch import main

main()
