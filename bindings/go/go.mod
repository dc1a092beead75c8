module github.com/dsabi/dsabi-go

go 1.19
