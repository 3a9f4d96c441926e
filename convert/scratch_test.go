package convert
import ("os";"testing")
func TestScratch(t *testing.T){ src,_:=os.ReadFile("testdata/scratch.sql"); out,err:=File("testdata/scratch.sql",src); if err!=nil{t.Fatal(err)}; for _,o:=range out{t.Logf("== %s\n%s",o.Name,o.YAML)}}
