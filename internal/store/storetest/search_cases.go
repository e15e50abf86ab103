package storetest

var pagingCases, includeCases, narrowCases, searchWriteCases []testCase
